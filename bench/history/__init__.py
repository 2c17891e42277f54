"""The history of CI runs across commits: a store of compact per-run files keyed by commit and
machine (`store`), the commits' order (`order`), change-point detection per figure (`steps`),
`bench history show` (`show`) and a static HTML dashboard (`dashboard`)."""
