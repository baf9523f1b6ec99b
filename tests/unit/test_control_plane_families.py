"""The control plane is its handler families composed: each operation belongs to exactly one."""

from collections import Counter

from iot_jobs_bridge.jobs_service.control_plane import SINGLE_RESOURCE_OPERATIONS, ControlPlane, Services
from iot_jobs_bridge.jobs_service.templates import Templates


def test_each_operation_is_handled_by_exactly_one_family(engine, registry, store, clock, arns):
    control = ControlPlane(
        Services(engine, registry, Templates(store, clock, arns), arns, lambda _events: None)
    )
    owners = Counter(name for family in control.families for name in family.handlers())
    assert [name for name, count in owners.items() if count > 1] == []
    assert set(control.handlers()) == set(owners)
    assert {"CreateJob", "CreateThing", "CreateKeysAndCertificate", "AttachPolicy"} <= set(owners)


def test_the_operations_answered_on_the_event_loop_are_handled_ones_that_scan_nothing(
    engine, registry, store, clock, arns
):
    control = ControlPlane(
        Services(engine, registry, Templates(store, clock, arns), arns, lambda _events: None)
    )
    assert set(control.handlers()) >= SINGLE_RESOURCE_OPERATIONS
    # Creating or ending a job, deleting a group and listing all scan many rows.
    scanning = {"CreateJob", "CancelJob", "DeleteJob", "DeleteThingGroup", "CreateDynamicThingGroup"}
    assert not SINGLE_RESOURCE_OPERATIONS & scanning
    assert not {name for name in SINGLE_RESOURCE_OPERATIONS if name.startswith("List")}
