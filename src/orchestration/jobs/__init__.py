"""Azure ML v2 jobs run locally, unchanged: a pipeline job YAML (or one parallel component) node by node.

Modules, one job each: `expressions` (`${{...}}` bindings, pure), `locations` (a YAML path or datastore URI
to a local path), `loading` (the YAML files, validated by azure-ai-ml's own loaders), `nodes` (a node's
resolved inputs, outputs and settings), `parallel_node` (a parallel node as a runner RunConfig),
`snapshot` (a command node's code, copied where it runs), `runner` (every node in dependency order),
`cli` (the command line).
"""
