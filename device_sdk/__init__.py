"""Device-side jobs client on paho-mqtt; it never imports jobs_service."""
