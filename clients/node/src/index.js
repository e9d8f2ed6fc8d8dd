export { Longformer2Vec } from "./longformer2vec.js";
export { ModelLoadError } from "./manifest.js";
