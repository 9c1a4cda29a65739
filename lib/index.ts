/** tokenpress: token compression for LLM inference. */
export { attention, attentionAsync, MAX_TREE_NODES, type AttentionOptions, type AttentionResult } from './attention.js';
export {
  toOrt, lastPositions, pastKeyValues, appendPresent, PAST_NAMES, PRESENT_NAMES,
  type OrtTensorClass, type ToOrtOptions, type KvNames, type PastKeyValuesOptions, type AppendPresentOptions,
} from './interop/ort.js';
export { backendInfo, setThreads, setIsa, type BackendInfo, type Isa } from './backend.js';
export { TokenpressError, type TokenpressErrorCode } from './errors.js';
export {
  type DType, type FloatDType, type Tensor, type TensorLike, type EcosystemTensor, tensor, zeros, numel, contiguousStrides,
  castTo, toF32, f32ToF16Bits, f16BitsToF32, f32ToBf16Bits, bf16BitsToF32,
} from './tensor.js';
export {
  scoreKv, selectKv, compressKv, budgetToKeep,
  type KvInputs, type KvInputsLike, type KvBudget, type SelectKvOptions, type CompressedKv,
} from './kv/stateless.js';
export {
  KV_POLICY_NAMES, KV_POLICY_DEFAULTS,
  type KvPolicy, type KvPolicyConfig, type KvPolicyName,
  type StreamingLlmPolicy, type KnormPolicy, type RandomPolicy, type TovaPolicy, type H2oPolicy, type SnapKvPolicy,
  type ExpectedAttentionPolicy, type SpecKvPolicy, type EmsPolicy,
} from './kv/policies.js';
export {
  KvCache,
  type KvCacheOptions, type KvCacheDtype, type KvCacheDevice, type AutoCompressOptions, type AttendOptions, type AttendResult, type CommitOptions,
  type CompressOptions, type CompressReport, type ExportedLayer, type QuestCacheSummaries,
} from './kv/cache.js';
export {
  questPageSummaries, questSelect, QUEST_DEFAULTS, SPARSE_METHODS,
  type SparseOptions, type SparseMethod, type QuestSparseOptions, type QuestSelectOptions, type QuestSummaries, type QuestGqa,
} from './sparse/quest.js';
export {
  tidalSelect, TIDAL_DEFAULTS, type TidalSparseOptions, type TidalSelectOptions,
} from './sparse/tidal.js';
export {
  blockSummaries, blockSelect, BLOCK_DEFAULTS, type BlockSparseOptions, type BlockSelectOptions, type BlockSummaries,
} from './sparse/blocks.js';
export {
  KV_CACHE_POLICY_NAMES,
  type KvCompressionPolicy, type MergeablePolicy, type PyramidKvPolicy, type AdaKvPolicy, type RazorPolicy, type EmsCachePolicy,
} from './kv/compression.js';
export {
  scoreRetrievalHeads, pickRetrievalHeads, RETRIEVAL_HEAD_DEFAULTS,
  type RetrievalHeadInputs, type RetrievalHeadScores, type PickRetrievalHeadsOptions,
} from './kv/retrieval-heads.js';
export {
  makeNeedleWorkload, type NeedleWorkload, type NeedleWorkloadOptions, type EvalQueries,
} from './kv/eval/workload.js';
export { compressLayerForEval, type LayerInputs, type EvalLayerCache } from './kv/eval/compress.js';
export { syntheticSource, type EvalSource } from './kv/eval/source.js';
export { loadKvTrace, writeKvTrace, traceSource, type KvTrace, type KvTraceLayer, type TraceSplit } from './kv/eval/traces.js';
export { readSafetensors, writeSafetensors, decodeSafetensors, encodeSafetensors, type SafetensorsContents } from './kv/eval/safetensors.js';
export {
  runKvEval, formatKvEvalTable, DEFAULT_BUDGETS, type KvEvalOptions, type KvEvalReport, type KvEvalRow, type KvEvalMetrics,
} from './kv/eval/run.js';
export { renderKvEvalSvg } from './kv/eval/plot-svg.js';
export { ByteModel, MAX_MODEL_ORDER, MODEL_TRAIN_DEFAULTS, type ByteModelInfo, type TrainModelOptions } from './coding/model.js';
export {
  EqualInfoTokenizer, type EqualInfoOptions, type EqualInfoDevice, type EqualInfoStats, type ModelCallback, type ProbabilityRows,
} from './coding/equal-info.js';
export { ByteTokenizer } from './coding/byte-tokenizer.js';
export { type Tokenizer, type TokenizerStats } from './coding/tokenizer.js';
export { compressStatic, decompressStatic, compressStaticBatchAsync, decompressStaticBatchAsync } from './coding/static.js';
export { zipBytes, unzipBytes, ZIP_MODES, type ZipMode, type ZipOptions, type UnzipOptions } from './coding/zip.js';
export {
  writeContainer, readContainer, verifyChecksum, containerChecksum,
  type ContainerHeader, type ContainerMode,
} from './coding/container.js';
export {
  compressAdaptive, compressAdaptiveAsync, decompressAdaptive, decompressAdaptiveAsync, adaptiveMaxOriginalLength,
  ADAPTIVE_MIN_MEMORY_LOG2, ADAPTIVE_MAX_MEMORY_LOG2, ADAPTIVE_DEFAULT_MEMORY_LOG2, ADAPTIVE_MAX_LENGTH, ADAPTIVE_MAX_EXPANSION,
  type AdaptiveOptions,
} from './coding/adaptive.js';
export {
  ByteLm, LmSession, PlainSession, BUILTIN_MODELS, BYTE_LM_FORMAT, modelDir,
  type ByteLmConfig, type ByteLmCard, type ByteLmLoadOptions, type LmSessionOptions, type LayerActivations, type ForwardOptions,
} from './model/byte-lm.js';
export { generate, sampleByte, Sampler, fullCacheBytes, type GenerateOptions, type GenerateResult, type GenerateMemory } from './model/generate.js';
export { NeuralByteModel, compressNeural, decompressNeural, softmaxRow, type NeuralByteModelOptions } from './model/neural-coder.js';
export {
  checkDraftTree, MAX_VOCAB, type DraftTree, type Drafter,
  TokenRecyclingDrafter, TOKEN_RECYCLING_DEFAULTS, type TokenRecyclingOptions,
  TOKEN_RECYCLING_TEMPLATE, compileTemplate, type CompiledTemplate,
  PromptLookupDrafter, PROMPT_LOOKUP_DEFAULTS, type PromptLookupOptions,
  callbackDrafter, type DraftCallback, type DraftTreeLike, type CallbackDrafterOptions,
} from './spec/drafters.js';
export {
  verifyGreedy, verifySampled, verifyTypical, TYPICAL_DEFAULTS, type SampledVerifyOptions, type TypicalOptions, type TypicalVerifyResult,
} from './spec/verify.js';
export { sampleAt, targetDistribution, seededUniform, type SamplingOptions, type DistributionOptions } from './spec/sampler.js';
export { type VerifyResult } from './spec/tree.js';
export {
  speculate, treePositions,
  type SpecTarget, type SpecVerification, type SpeculateOptions, type SpeculateResult, type SpecStats,
} from './spec/decoder.js';
export { byteLmTarget } from './spec/byte-lm-target.js';
// prompt: extractive selection for RAG (RECOMP, EXIT) and TCRA-LLM semantic compression
export { splitSentences, type SplitSentencesOptions } from './prompt/sentences.js';
export { bm25Scores, bm25Terms, BM25_DEFAULTS, type Bm25Params } from './prompt/bm25.js';
export {
  bm25Scorer, embeddingScorer, yesNoScorer, yesProbability, fillTemplate, EXIT_TEMPLATE,
  type SentenceScorer, type SentenceCandidate, type EmbeddingScorerOptions, type YesNoLogits, type YesNoScorerOptions,
} from './prompt/sentence-scorers.js';
export { type EmbedFn } from './prompt/embeddings.js';
export {
  selectSentences, SENTENCE_SEPARATOR, DOCUMENT_SEPARATOR,
  type SelectSentencesOptions, type SelectedSentences, type ScoredSentence,
} from './prompt/extractive.js';
export { semanticCompress, type SemanticCompressOptions, type SemanticCompressed } from './prompt/tcra.js';
// prompt: eval (`tokenpress eval prompt`: dataset, method registry with the floors, evaluation loop)
export {
  buildPromptEvalDataset, parseDictEntries, PROMPT_EVAL_DATASET_DEFAULTS, HELDOUT_BLOCK_BYTES,
  type PromptEvalDataset, type PromptEvalDatasetOptions, type PromptEvalContext, type PromptEvalQuestion, type DictEntry,
} from './prompt/eval/dataset.js';
export {
  PROMPT_EVAL_METHODS, findPromptEvalMethod, promptEvalMethodNames, tokenBudget, wordSpans,
  keepRandomWords, keepFirstWords, keepLastWords, keepFirstLastWords,
  type PromptEvalMethod, type PromptEvalMethodKind, type PromptEvalCompressOptions,
} from './prompt/eval/methods.js';
export {
  runPromptEval, answerKept, checkKeptSpans, formatPromptEvalTable, rateLabel, DEFAULT_PROMPT_EVAL_RATES,
  type PromptEvalOptions, type PromptEvalReport, type PromptEvalRow, type AnswerKept,
} from './prompt/eval/run.js';
// prompt: self-information (Selective Context, LLMLingua-1 iterative) and SpecPC scorers from the built-in byte models
export {
  selfInfoScorer, selectiveContext, nanPercentile, phraseSpans, sentenceSpans, unitSpans,
  type SelfInfoScorer, type SelfInfoScorerOptions, type SelectiveContextOptions, type SelfInfoUnit, type SelfInfoConditioning, type ByteLmRef,
} from './prompt/self-info.js';
export { compressIterative, type IterativeOptions, type IterativeUnit } from './prompt/iterative.js';
export {
  specpcScores, compressSpecPC, specpcScorer,
  type SpecPcScoreOptions, type SpecPcScores, type SpecPcOptions, type SpecPcScorer, type SpecPcScorerOptions, type SpecPcReduction,
} from './prompt/specpc.js';
export { specpcPool, specpcSelect, SPECPC_SELECT_DEFAULTS, type SpecPcPoolOptions, type SpecPcSelectOptions, type PoolType } from './prompt/pool.js';
// prompt: LLMLingua-2 engine, token counters, callback scorer, scorer table
export {
  compressPrompt, scorePrompt, compressScored, MAX_FORCE_TOKENS,
  type CompressPromptOptions, type CompressScoredOptions, type ScoredPrompt, type LLMLingua2Result, type ContextSpan,
} from './prompt/llmlingua2.js';
export { percentile } from './prompt/percentile.js';
export { cl100kCounter, o200kCounter, TOKEN_COUNTERS, counterFromEncode, cachedCounter } from './prompt/tokenizers.js';
export { callbackScorer, checkTokenSpans, checkTokenScores, type CallbackScorerOptions } from './prompt/callback-scorer.js';
export {
  PROMPT_SCORERS, randomScorer, lengthScorer, simpleTokenize, type ScorerFactory, type ScorerFactoryOptions,
} from './prompt/scorers.js';
export { type WordProbMode } from './prompt/words.js';
export type { Span, ScoredSpan, TokenScorer, CountTokens, CompressedPrompt } from './prompt/types.js';
// tokenizer tools (tok-core): the TokenVocab contract and the built-in vocabularies
export type { TokenVocab, TokenVocabIndex, VocabName, VocabKind } from './tokenizer/types.js';
export { loadVocab, VOCAB_NAMES, VOCAB_PACKAGES } from './tokenizer/vocab.js';
export { ByteBpeVocab, type ByteBpeSpec } from './tokenizer/byte-bpe-vocab.js';
export { rustRegexToJs } from './tokenizer/rust-regex.js';
export { vocabFromTokenizerJson } from './tokenizer/tokenizer-json.js';
// tokenizer tools (tok-bytes): exact byte-level probabilities from a token LM, the token-level KN model, the coders' adapter
export { type TokenLm, checkTokenLm } from './tokenizer/token-lm.js';
export { TokenByteProbs, ByteProbStepper, type ByteProbsOptions, type ByteProbsMask } from './tokenizer/byte-probs.js';
export { TokenKnModel, type TokenKnTrainOptions } from './tokenizer/token-kn.js';
export { TokenLmByteModel, compressTokenLm, decompressTokenLm, type TokenLmCompressed } from './tokenizer/token-byte-model.js';
// tokenizer: dynamic tokenization (batch-level BPE)
export {
  dynamicTokenize, meanOfPiecesEmbeddings, DYNAMIC_DEFAULTS, DYNAMIC_BOUNDARIES,
  type DynamicTokenizeOptions, type DynamicTokenization, type DynamicMerge, type DynamicBoundary, type DynamicVocab,
} from './tokenizer/dynamic.js';
// tokenizer tools (tok-omp): batched OMP and embedding transplantation
export { ompBatch, ompBatchAsync, applyOmpCodes, OMP_DEFAULT_K, OMP_MAX_K, type OmpOptions, type OmpAsyncOptions, type OmpResult } from './tokenizer/omp.js';
export {
  transplantEmbeddings, transplantEmbeddingsAsync, TRANSPLANT_METHODS, type TransplantMethod, type TransplantOptions, type TransplantResult,
  type TokenEmbedder,
} from './tokenizer/transplant.js';
export { parseNpy, parseRawF32, encodeNpy, type F32Matrix } from './tokenizer/npy.js';
// tokenizer tools (tok-super): supertokens (SuperBPE stage 2 over a base vocabulary)
export { trainSupertokens, trainSupertokensAsync, Supertokenizer, splitStage2, STAGE2_PATTERN, type SupertokenOptions, type SupertokenStats } from './tokenizer/supertokens.js';
export { mergesFromRanks, type RankedVocab, type RankMerges } from './tokenizer/merges-from-ranks.js';
// visual-token pruning (group select, issue 19): DivPrune, FastV, VTC-CLS, GlobalCom2, ToDRE (docs/vision-select.md)
export { divPrune, divPruneAsync, DIVPRUNE_DEFAULT_RATIO, type DivPruneOptions } from './vision/divprune.js';
export { vtcCls, vtcClsAsync, type VtcClsOptions } from './vision/vtc-cls.js';
export { fastv, fastvSelect, fastvSelectAsync, fastvSelectFromQK, fastvSelectFromQKAsync, FASTV_DEFAULTS, type FastvOptions, type FastvSelection } from './vision/fastv.js';
export { globalCom2, globalCom2Async, GLOBALCOM2_DEFAULTS, type GlobalCom2Input, type GlobalCom2Options, type GlobalCom2Result } from './vision/globalcom2.js';
export { todreDiversity, todreDiversityAsync, todreRelevance, todreAttendPositions, todreAttendIndices, TODRE_DEFAULTS, type TodreSchedule } from './vision/todre.js';
export * from './vision/tome.js';
export * from './vision/pool.js';
export * from './vision/transform.js';
// vision (vis-cluster): VQToken k-means, Recoverable Compression, CoreMatching
export { vqToken, vqTokenAsync, type VqTokenOptions, type VqTokenResult } from './vision/vqtoken.js';
export { recoverableCompress, recoverableCompressFrames, recoverableCompressAsync, type RecoverableOptions, type RecoverableResult } from './vision/recoverable.js';
export { coreMatching, coreMatchingFrames, coreMatchingAsync, type CoreMatchingOptions, type CoreMatchingResult } from './vision/corematching.js';
export { tokenCorrCompress, tokenCorrCompressFrames, tokenCorrCompressAsync, type TokenCorrOptions, type TokenCorrResult } from './vision/tokencorr.js';
// tokenizer tools (tok-canon): the canonical-prefix mask of the exact byte-level probabilities
export { isCanonicalPrefix, CONTINUATION_PROBES } from './tokenizer/canonical-prefix.js';
