"""The bottom of the house: what every layer may import and that imports nothing of ours.

`base.text` makes outside text safe to show in Slack; `base.patterns` runs patterns that people type
in linear time. Nothing here knows Slack's transport, Kubernetes or the store.
"""
