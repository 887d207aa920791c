export { registerReferenceApi } from './plugin.ts';
