"""The report and everything it shows, from typed runs (`training.record.Run`, `RunGroup`);
it imports only `training` (what it needs of the task scripts, report.py hands it).

`render` (a `Table`, rendered to Markdown and LaTeX; the report's blocks as REPORT.md and
REPORT.tex; compiling REPORT.pdf), `results` (tables and facts from runs, and the report's
tables of runs), `architecture` (a model's parameters, layers and training details as
tables), `figures` (the matplotlib figures), `paired` and `task2e` (Task 2e's comparison:
its statistics, and its measures, tables, facts and figure), `bar` (the handout's bar for Task
2, seed by seed, and the checklist's verdict), `cited` (which runs the report cites, and the
cells that say where and when each ran), `words` (the report's words), `layout` (where the
figures stand and the headings' anchors), `task2` (Task 2's part of the report) and `sections`
(the report in the order a student hands it in, with its figures).
"""
