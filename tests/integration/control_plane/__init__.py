"""boto3 interop suite: every control-plane operation, its success path and each documented error."""
