"""The Kubernetes commands against the sandbox, kubectl as the judge."""
