export { main, registerCommand } from './main.js';
