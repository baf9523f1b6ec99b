"""Every device-plane rule driven through the real broker: SDK V1 and V2 devices, raw paho devices."""
