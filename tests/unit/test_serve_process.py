"""What `iotjobs serve` sets up for its own process."""

import subprocess
import sys

from iot_jobs_bridge.jobs_service.serve_cli import GC_YOUNG_THRESHOLD


def test_startup_objects_are_kept_out_of_collections_and_young_ones_collected_less_often():
    # In a process of its own: freezing the collector would outlive this test.
    probe = (
        "import gc\n"
        "from iot_jobs_bridge.jobs_service.serve_cli import _keep_startup_out_of_collections\n"
        "_keep_startup_out_of_collections()\n"
        "print(gc.get_threshold()[0], gc.get_freeze_count())\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    threshold, frozen = map(int, result.stdout.split())

    assert threshold == GC_YOUNG_THRESHOLD
    assert frozen > 10_000  # the modules, models and schemas loaded at startup
