/**
 * A form that starts one job: the error to show, the job it started, and a submit handler that
 * clears the error, starts the job and shows why when it cannot. One per view that starts jobs.
 */
import { invalidField } from '../validity.js';
import { workbench } from './workbench.svelte.js';

export class JobForm {
  error = $state<string | null>(null);
  jobId = $state<string | null>(null);
  job = $derived(workbench.job(this.jobId));

  /** A handler for onsubmit (or onclick): `start` checks the form and returns the started job's id. */
  submit(start: () => Promise<string>): (e?: Event) => Promise<void> {
    return async (e) => {
      e?.preventDefault();
      const invalid = invalidField(e?.currentTarget, () => { if (this.error === invalid) this.error = null; });
      this.error = invalid;
      if (invalid) return;
      try {
        this.jobId = await start();
      } catch (err) {
        this.error = (err as Error).message;
      }
    };
  }
}
