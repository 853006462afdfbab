"""golive: a Prefect-native go-live orchestrator. This package is the pure core: importing it
pulls in neither Prefect nor any network client."""

__version__ = "0.1.0"
