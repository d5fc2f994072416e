-- SPDX-License-Identifier: Apache-2.0
-- wrk script: prints one summary line per run with requests per second,
-- the median and 99th-percentile latency, and the error counts.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read +
                 summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "wrk: requests=%d requests/s=%.0f p50=%.3fms p99=%.3fms " ..
    "non-2xx=%d socket-errors=%d\n",
    summary.requests, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, errors))
end
