/**
 * The browser's own checks of a field (required, min, max) where a button is not a form's
 * submit button, so a click does not run them: the first invalid field of the panel the click
 * came from is pointed out by the browser, and its label with the browser's reason is returned
 * for the view to show; null when every field is valid. `fixed` runs once that field holds a
 * valid value again, for the view to take the message down: left up, it named a field that
 * showed a good value.
 */
export function invalidField(from: EventTarget | null | undefined, fixed?: () => void): string | null {
  const panel = from instanceof Element ? from.closest('.panel') : null;
  const field = panel?.querySelector<HTMLInputElement | HTMLSelectElement>('input:invalid, select:invalid');
  if (!field) return null;
  field.reportValidity();
  if (fixed) {
    const check = () => {
      if (!field.validity.valid) return;
      field.removeEventListener('input', check);
      fixed();
    };
    field.addEventListener('input', check);
  }
  const label = field.closest('label')?.firstChild?.textContent?.trim() || field.name;
  return `${label}: ${field.validationMessage}`;
}
