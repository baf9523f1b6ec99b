"""Fleet simulator: virtual devices that are clients of the service, like a real fleet."""
