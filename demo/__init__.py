"""`cfbot demo`: the console that plays Slack and the parts of the simulated world it starts."""
