/** The drafters' public API (re-exported by lib/index.ts in one block). */
export { checkDraftTree, MAX_VOCAB, type DraftTree, type Drafter } from './drafter.js';
export { TokenRecyclingDrafter, TOKEN_RECYCLING_DEFAULTS, type TokenRecyclingOptions } from './token-recycling.js';
export { TOKEN_RECYCLING_TEMPLATE, compileTemplate, type CompiledTemplate } from './token-recycling-template.js';
export { PromptLookupDrafter, PROMPT_LOOKUP_DEFAULTS, type PromptLookupOptions } from './prompt-lookup.js';
export { callbackDrafter, type DraftCallback, type DraftTreeLike, type CallbackDrafterOptions } from './callback-drafter.js';
