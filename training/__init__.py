"""Training's parts, imported by the commands at the root and by `reporting`; nothing here
imports anything outside this package.

Its modules: `errors` (the typed errors), `recipes` (the one table of the models),
`cli` (the flags every command shares and the one wording of errors), `storage` (run files on
disk), `record` (a run as its file records it: `Run`, `RunGroup`), `batches` (CIFAR-10's
classes and batches made from in-memory tensors), `steps` (the training step),
`evaluation` (what a check and the end measure), `checks` (early stopping and a check's
console line), `architecture` (a model's layers and parameters as data) and `jobs` (what a
task trains: its jobs, optimizer, schedule and seeds).
"""
