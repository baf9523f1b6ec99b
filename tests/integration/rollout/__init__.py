"""The rollout engine on a scaled clock: pacing, abort, timeouts, retries, schedules, and a crash."""
