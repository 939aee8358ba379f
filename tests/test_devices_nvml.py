"""The NVML reader against a small stand-in for `pynvml` (NVML needs a GPU, which this machine
has not): the stand-in answers each call as the NVML reference manual describes it (return
values, NVML_FEATURE_* flags, throttle-reason bits, NVMLError_NotSupported for a feature the GPU
lacks, NVMLError_Timeout from an event wait with nothing waiting). Nothing of Suan's is faked."""

from __future__ import annotations

import sys
from collections import deque
from types import SimpleNamespace

from suan.devices.model import Severity
from suan.devices.nvml import NvmlReader
from suan.devices.severity import default_severity_table, judge


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # pynvml's own class names
    pass


class NVMLError_Timeout(NVMLError):
    pass


class NVMLError_DriverNotLoaded(NVMLError):
    pass


class FakeGpu:
    def __init__(self, name: str, links: int = 18, ecc: int = 0, remap_pending: bool = False):
        self.name, self.links, self.ecc, self.remap_pending = name, links, ecc, remap_pending
        self.links_down: set[int] = set()
        self.throttle = 0x1  # nvmlClocksThrottleReasonGpuIdle


class FakeNvml:
    """What the functions Suan calls return, per the NVML API reference."""

    NVMLError = NVMLError
    NVMLError_Timeout = NVMLError_Timeout
    NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0
    NVML_AGGREGATE_ECC = 1
    NVML_FEATURE_DISABLED = 0
    NVML_FEATURE_ENABLED = 1
    NVML_TEMPERATURE_GPU = 0
    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
    NVML_NVLINK_MAX_LINKS = 18
    nvmlEventTypeXidCriticalError = 0x8
    nvmlClocksThrottleReasonHwSlowdown = 0x8
    nvmlClocksThrottleReasonSwThermalSlowdown = 0x20
    nvmlClocksThrottleReasonHwThermalSlowdown = 0x40
    nvmlClocksThrottleReasonHwPowerBrakeSlowdown = 0x80

    def __init__(self, gpus: list[FakeGpu], driver_loaded: bool = True):
        self.gpus = gpus
        self.driver_loaded = driver_loaded
        self.events: deque = deque()
        self.registered: list[int] = []
        self.inits = 0

    def nvmlInit(self):
        if not self.driver_loaded:
            raise NVMLError_DriverNotLoaded("Driver Not Loaded")
        self.inits += 1

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        return self.gpus[index]

    def nvmlDeviceGetName(self, gpu):
        return gpu.name.encode()  # older nvidia-ml-py releases return bytes

    def nvmlDeviceGetUUID(self, gpu):
        return f"GPU-{self.gpus.index(gpu):08d}"

    def nvmlDeviceGetMemoryInfo(self, gpu):
        return SimpleNamespace(total=81559 * (1 << 20), used=0, free=81559 * (1 << 20))

    def nvmlDeviceGetTotalEccErrors(self, gpu, kind, counter):
        return gpu.ecc if kind == self.NVML_MEMORY_ERROR_TYPE_UNCORRECTED else 0

    def nvmlDeviceGetRetiredPagesPendingStatus(self, gpu):
        raise NVMLError_NotSupported("Not Supported")  # row remapping replaced it on A100+

    def nvmlDeviceGetRemappedRows(self, gpu):
        return (0, 1 if gpu.remap_pending else 0, gpu.remap_pending, False)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, gpu):
        return gpu.throttle

    def nvmlDeviceGetTemperature(self, gpu, sensor):
        return 41

    def nvmlDeviceGetTemperatureThreshold(self, gpu, kind):
        return 90

    def nvmlDeviceGetNvLinkState(self, gpu, link):
        if link >= gpu.links:
            raise NVMLError_NotSupported("Not Supported")
        return self.NVML_FEATURE_DISABLED if link in gpu.links_down else self.NVML_FEATURE_ENABLED

    def nvmlEventSetCreate(self):
        return "event-set"

    def nvmlDeviceRegisterEvents(self, gpu, types, event_set):
        self.registered.append(self.gpus.index(gpu))

    def nvmlEventSetWait_v2(self, event_set, timeout_ms):
        assert timeout_ms == 0, "the reader must not wait for events"
        if not self.events:
            raise NVMLError_Timeout("Timeout")
        gpu, xid = self.events.popleft()
        return SimpleNamespace(device=gpu, eventType=0x8, eventData=xid, gpuInstanceId=0)


def by_name(reading) -> dict[str, float | str]:
    return {signal.name: signal.value for signal in reading.signals}


def hgx(count: int = 2) -> FakeNvml:
    return FakeNvml([FakeGpu("NVIDIA H100 80GB HBM3") for _ in range(count)])


def test_a_healthy_node_reads_every_signal_and_judges_ok():
    nvml = hgx()
    report = NvmlReader(nvml).read()
    assert report.unknown == "" and report.tool == "nvml" and len(report.devices) == 2
    gpu = report.devices[1]
    assert (gpu.model, gpu.uuid, gpu.memory_mib) == ("NVIDIA H100 80GB HBM3", "GPU-00000001", 81559)
    found = by_name(gpu)
    assert found["link_down"] == 0 and found["links_up"] == 18
    assert found["ecc_uncorrectable"] == 0 and found["remapped_rows_pending"] == "No"
    assert found["hw_slowdown"] == "Not Active" and found["temperature_margin_c"] == 49
    assert "retired_pages_pending" not in found  # NotSupported gives no signal
    assert nvml.registered == [0, 1]
    assert judge(report, default_severity_table(), 2).severity is Severity.OK


def test_an_xid_79_drains_and_stays_on_its_device_across_reads():
    nvml = hgx()
    reader = NvmlReader(nvml, clock=lambda: 0.0)
    assert reader.read().unknown == ""
    nvml.events.append((nvml.gpus[1], 79))
    first = judge(reader.read(), default_severity_table(), 2)
    assert first.severity is Severity.DRAIN and first.unhealthy_devices == frozenset({1})
    assert first.reason == (
        "drain: device 1 (NVIDIA H100 80GB HBM3) xid: Xid 79 at 1970-01-01 00:00:00 UTC"
    )
    assert judge(reader.read(), default_severity_table(), 2).severity is Severity.DRAIN
    assert nvml.inits == 1  # NVML stays initialised between reads


def test_a_link_down_and_a_thermal_slowdown_are_seen():
    nvml = hgx()
    nvml.gpus[0].links_down = {3, 7}
    nvml.gpus[1].throttle = 0x1 | nvml.nvmlClocksThrottleReasonHwThermalSlowdown
    report = NvmlReader(nvml).read()
    assert by_name(report.devices[0])["link_down"] == 2
    assert report.devices[0].signals[-2].detail == "NVLink links down: 3, 7"
    assert by_name(report.devices[1])["thermal_throttle"] == "Active"
    verdict = judge(report, default_severity_table(), 2)
    assert verdict.severity is Severity.DRAIN and verdict.unhealthy_devices == frozenset({0})


def test_a_pcie_gpu_without_nvlink_has_no_link_signal():
    nvml = FakeNvml([FakeGpu("NVIDIA L40S", links=0)])
    assert "link_down" not in by_name(NvmlReader(nvml).read().devices[0])


def test_nvml_that_cannot_start_gives_health_unknown_and_is_tried_again():
    nvml = FakeNvml([FakeGpu("NVIDIA H100 80GB HBM3")], driver_loaded=False)
    reader = NvmlReader(nvml)
    assert reader.read().unknown == "NVML: Driver Not Loaded"
    nvml.driver_loaded = True
    assert reader.read().unknown == "" and nvml.inits == 1


def test_without_nvidia_ml_py_health_is_unknown_with_the_extra_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    report = NvmlReader().read()
    assert report.unknown == "nvidia-ml-py is not installed (suan[nvidia])"


def test_a_slowdown_reads_the_same_words_as_nvidia_smi():
    nvml = hgx(1)
    nvml.gpus[0].throttle = nvml.nvmlClocksThrottleReasonHwSlowdown
    (gpu,) = NvmlReader(nvml).read().devices
    details = {signal.name: signal.detail for signal in gpu.signals}
    assert details["hw_slowdown"] == "clock slowdown hw_slowdown: Active"
    assert details["thermal_throttle"] == "thermal_throttle: Not Active"
