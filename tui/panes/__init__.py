"""The explorer's panes: widgets that own their state and the workers that read it.

A pane tells its screen what changed with messages and is told what to do by method
calls; the screen keeps the layout, focus, zoom and the actions that span panes."""
