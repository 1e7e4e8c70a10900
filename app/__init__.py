"""The composition root: the one place that knows every part (platform, incidents, demo) and wires them.

`app.cli` is `cfbot`: it builds the bot with incidents (`incidents.assemble`) for `run`, or starts the demo.
Nothing imports `app`.
"""
