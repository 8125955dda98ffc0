"""params.yaml: loading, validation and the typed sections the stages receive."""
