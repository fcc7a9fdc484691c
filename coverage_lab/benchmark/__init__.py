"""Benchmarks: what the engine costs, measured (never asserted as a timing).

* `journeys`: the call journeys the benchmarks drive, and a fake ARI server
  that counts what each call costs on the wire (events in, requests out).
* `engine_only`: the real engine against that fake over loopback, as fast as
  it goes: call setups per second and CPU microseconds per call.

The side-by-side SIPp benchmark against the sandbox PBX lives beside them.
"""
