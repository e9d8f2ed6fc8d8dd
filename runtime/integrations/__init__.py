"""`Longformer2Vec` inside application frameworks, in-process (no server): LangChain's `Embeddings`
(:mod:`.langchain`, needs the `langchain` extra) and LlamaIndex's `BaseEmbedding` (:mod:`.llama_index`,
the `llama-index` extra). Each module imports its framework; this package imports neither."""
