"""The platform: dispatch, approvals, store, audit, layering, types and the processes."""
