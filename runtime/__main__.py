"""`python -m longformer2vec` == the `longformer2vec` console script."""

from longformer2vec.cli import main

raise SystemExit(main())
