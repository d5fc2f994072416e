#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Write the seed corpus of the fuzz harnesses into tests/fuzz/corpus/.

Each harness reads a selector byte first (see the header of its
fuzz_<name>.c), so every seed is that byte followed by the input proper.
Frames are encoded here by hand in Avro's binary encoding, so the seeds
need no Avro library; the other seeds are small texts, some taken from
tests/fixtures. Running the script again rewrites the same files.
"""
import binascii
import glob
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def write(harness, name, data):
    folder = os.path.join(CORPUS, harness)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ---- Avro binary encoding ---------------------------------------------


def zigzag(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    n &= (1 << 64) - 1
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return zigzag(len(b)) + b


def double(x):
    return struct.pack("<d", x)


def optional(encoded):
    """A ["null", T] union: branch 1 with the value, or branch 0."""
    return zigzag(0) if encoded is None else zigzag(1) + encoded


def frame(schema_id, body):
    return b"\x00" + struct.pack(">i", schema_id) + body


def reading(sensor_id="temp-01", type_index=0, value=21.5,
            ts=1767225600000, location="hall", anomaly=False,
            battery=80, signal=-60, unit="C", extra=b""):
    return (string(sensor_id) + zigzag(type_index) + double(value) +
            zigzag(ts) + string(location) + bytes([1 if anomaly else 0]) +
            zigzag(battery) + zigzag(signal) +
            optional(None if unit is None else string(unit)) + extra)


def event(type_index=2, device=1, full=True):
    body = (string("ev-1") + zigzag(type_index) + string("user-1") +
            zigzag(1767225600000) + string("sess-1") + zigzag(device) +
            string("192.0.2.7"))
    if not full:
        return body + zigzag(0) * 13
    return body + b"".join([
        optional(zigzag(1234)),          # product_id
        optional(string("lamp")),        # product_name
        optional(string("home")),        # category
        optional(zigzag(2)),             # quantity
        optional(double(19.99)),         # price
        optional(double(39.98)),         # total
        optional(string("EUR")),         # currency
        optional(string("/cart")),       # page
        optional(double(3.5)),           # duration_seconds
        optional(string("card")),        # payment_method
        optional(string("1 Main St")),   # shipping_address
        optional(string("lamp")),        # query
        optional(zigzag(7)),             # results_count
    ])


def frame_seeds():
    # Selector: bit 0 = event decoder, bit 7 = commerce generic reader.
    write("frame", "reading_valid", b"\x00" + frame(1, reading()))
    write("frame", "reading_no_unit", b"\x00" + frame(1, reading(unit=None)))
    write("frame", "reading_utf8",
          b"\x00" + frame(1, reading(sensor_id="capteur-\u00e9",
                                     location="\u6e29\u5ea6")))
    write("frame", "reading_nan",
          b"\x00" + frame(1, reading(value=float("nan"))))
    write("frame", "reading_enum_last",
          b"\x00" + frame(1, reading(type_index=5)))
    write("frame", "reading_enum_bad",
          b"\x00" + frame(1, reading(type_index=6)))
    write("frame", "reading_trailing",
          b"\x00" + frame(1, reading() + b"\x00"))
    write("frame", "reading_truncated",
          b"\x00" + frame(1, reading()[:-3]))
    write("frame", "reading_long_id",
          b"\x00" + frame(1, reading(sensor_id="x" * 200)))
    write("frame", "reading_int_range",
          b"\x00" + frame(1, reading(battery=2**31 - 1, signal=-2**31)))
    # Id 3 is sensor_reading_v2.avsc: one more optional field at the end.
    write("frame", "reading_v2",
          b"\x00" + frame(3, reading(extra=optional(string("1.2.3")))))
    write("frame", "reading_v2_null",
          b"\x00" + frame(3, reading(extra=optional(None))))
    for schema_id in (4, 5, 6, 7):
        write("frame", "reading_id%d" % schema_id,
              b"\x00" + frame(schema_id, reading()))
    write("frame", "event_valid", b"\x01" + frame(2, event()))
    write("frame", "event_sparse", b"\x81" + frame(2, event(full=False)))
    write("frame", "event_as_reading", b"\x00" + frame(2, event()))
    write("frame", "reading_as_event", b"\x81" + frame(1, reading()))
    write("frame", "empty", b"\x00")
    write("frame", "header_only", b"\x00" + frame(1, b""))
    write("frame", "bad_magic", b"\x00\x01" + frame(1, reading())[1:])
    write("frame", "unknown_id", b"\x00" + frame(99, reading()))
    write("frame", "negative_length",
          b"\x00" + frame(1, zigzag(-5) + b"abc"))
    write("frame", "overlong_varint",
          b"\x00" + frame(1, string("s") + b"\xff" * 11))
    # The failure cases' frames, which name other schema ids.
    for path in sorted(glob.glob(os.path.join(REPO, "tests/fixtures/cases",
                                              "*", "*.hex"))):
        with open(path) as f:
            hex_text = "".join(f.read().split())
        case = os.path.basename(os.path.dirname(path))
        name = os.path.splitext(os.path.basename(path))[0]
        write("frame", "case_%s_%s" % (case, name),
              b"\x00" + binascii.unhexlify(hex_text))


# ---- Replay files -------------------------------------------------------

# Selector: low three bits pick the format, bit 3 turns on rebase_time.
AUTO, NAB, SENSOR_CSV, NDJSON, COMMERCE_CSV, FRAMES = range(6)
REBASE = 8

READING_JSON = ('{"sensor_id":"temp-01","sensor_type":"temperature",'
                '"value":21.5,"timestamp":1767225600000,"location":"hall",'
                '"metadata":{"battery_level":80,"signal_strength":-60},'
                '"unit":"C"}')
EVENT_JSON = ('{"event_id":"ev-1","event_type":"purchase","user_id":"u-1",'
              '"timestamp":"2026-01-01T00:00:00Z","session_id":"s-1",'
              '"device":"mobile","ip_address":"192.0.2.7","price":19.99,'
              '"quantity":2,"product_id":1234,"currency":"EUR"}')


def replay_seeds():
    nab = ("timestamp,value\n2013-12-02 21:15:00,73.967\n"
           "2013-12-02 21:20:00,74.935\n2013-12-02 21:25:00,76.124\n")
    write("replay", "nab", bytes([NAB]) + nab.encode())
    write("replay", "nab_auto", bytes([AUTO]) + nab.encode())
    write("replay", "nab_rebase", bytes([NAB | REBASE]) + nab.encode())
    write("replay", "nab_bad_rows", bytes([NAB]) + (
        "timestamp,value\n2013-12-02 21:15:00,abc\nnot a time,1\n"
        "2013-13-40 25:61:00,1\n,\n\"2013-12-02\",\"7\"\n").encode())
    write("replay", "nab_crlf", bytes([NAB]) +
          b"timestamp,value\r\n2013-12-02T21:15:00Z,1e308\r\n")
    sensor = ("sensor_id,sensor_type,value,timestamp,location,battery_level,"
              "signal_strength,unit,anomaly\n"
              "temp-01,temperature,21.5,2026-01-01T00:00:00Z,hall,80,-60,C,"
              "false\n"
              "\"hum,01\",HUMIDITY,45,1767225601000,\"a \"\"b\"\"\",,,,true\n")
    write("replay", "sensor_csv", bytes([SENSOR_CSV]) + sensor.encode())
    write("replay", "sensor_csv_auto", bytes([AUTO]) + sensor.encode())
    write("replay", "sensor_csv_minimal", bytes([SENSOR_CSV]) +
          b"value,timestamp,sensor_id\n1,2026-01-01,s\n")
    write("replay", "sensor_csv_unknown_column", bytes([SENSOR_CSV]) +
          b"sensor_id,value,timestamp,colour\ns,1,2026-01-01,red\n")
    with open(os.path.join(REPO, "tests/fixtures/cases/B12/readings.csv"),
              "rb") as f:
        write("replay", "case_B12_readings", bytes([AUTO]) + f.read())
    ndjson = READING_JSON + "\n" + EVENT_JSON + "\n\n{}\n[1]\nnot json\n"
    write("replay", "ndjson", bytes([NDJSON]) + ndjson.encode())
    write("replay", "ndjson_rebase", bytes([NDJSON | REBASE]) +
          ndjson.encode())
    with open(os.path.join(REPO, "tests/fixtures/cases/B09/input.jsonl"),
              "rb") as f:
        write("replay", "case_B09_input", bytes([NDJSON]) + f.read())
    commerce = ("event_time,event_type,product_id,category_id,category_code,"
                "brand,price,user_id,user_session\n"
                "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,"
                "shiseido,35.79,541312140,72d76fde-8bb3-4e00-8c23-"
                "a032dfed738c\n"
                "2019-10-01 00:00:01 UTC,purchase,3900821,"
                "2053013552326770905,appliances.environment.water_heater,"
                "aqua,33.20,554748717,9333dfbd-b87a-4708-9857-6336556b0fcc\n"
                "2019-10-01 00:00:02 UTC,cart,1,,,,-1,2,s\n")
    write("replay", "commerce_csv", bytes([COMMERCE_CSV]) + commerce.encode())
    write("replay", "commerce_csv_auto", bytes([AUTO]) + commerce.encode())
    write("replay", "commerce_no_category_id", bytes([COMMERCE_CSV]) + (
        "event_time,event_type,product_id,category_code,brand,price,user_id,"
        "user_session\n2019-10-01 00:00:00 UTC,remove_from_cart,5,a.b,x,"
        "1.5,7,s\n").encode())
    value = frame(1, reading()).hex()
    frames = ("sensor-readings\t74656d702d3031\t%s\n"
              "sensor-readings\t\t%s\n"
              "sensor-readings\tzz\t00\n"
              "bad topic!\t00\t00\n"
              "ecommerce-events\t6576\t%s\n" %
              (value, value[:11], frame(2, event()).hex()))
    write("replay", "frames", bytes([FRAMES]) + frames.encode())
    write("replay", "frames_odd_hex", bytes([FRAMES]) +
          b"t\t0\t000\nt\t00\n\t\t\n")
    write("replay", "empty_nab", bytes([NAB]))
    write("replay", "header_only", bytes([SENSOR_CSV]) +
          b"sensor_id,value,timestamp\n")
    write("replay", "no_newline", bytes([NAB]) +
          b"timestamp,value\n2013-12-02 21:15:00,1")
    write("replay", "nul_bytes", bytes([SENSOR_CSV]) +
          b"sensor_id,value,timestamp\ns\x00x,1,2026-01-01\n")
    write("replay", "bad_utf8", bytes([SENSOR_CSV]) +
          b"sensor_id,value,timestamp\n\xc3\x28,1,2026-01-01\n")
    write("replay", "quoted_newline", bytes([SENSOR_CSV]) +
          b"sensor_id,value,timestamp\n\"a\nb\",1,2026-01-01\n")


# ---- API query strings ----------------------------------------------------


def query_seeds():
    # Selector: low three bits = route, bit 3 = POST, bit 7 = raw path.
    routes = {"health": 0, "latest": 1, "stats": 2, "anomalies": 3,
              "metrics": 4, "dlq": 5, "dlq_entry": 6, "dlq_replay": 7}
    seeds = [
        ("latest", "sensor_id=temp-01&limit=5"),
        ("latest", "sensor_type=humidity&from=2026-01-01T00:00:00Z"
                   "&to=2026-01-02T00:00:00Z"),
        ("latest", "limit=0"),
        ("latest", "limit=101"),
        ("latest", "limit=-9223372036854775808"),
        ("latest", "limit=99999999999999999999"),
        ("latest", "sensor_id=%C3%A9&sensor_id=x"),
        ("latest", "sensor_id=%zz"),
        ("latest", "sensor_id=%00"),
        ("latest", "sensor_id=%c3%28"),
        ("latest", "a=1&&b=2;c"),
        ("latest", "from=2026-01-01T00:00:00%2B01:00"),
        ("latest", "from=2026-02-30"),
        ("stats", "time_window_minutes=5"),
        ("stats", "time_window_minutes=1441"),
        ("stats", "from=2026-01-01&to=2025-01-01"),
        ("stats", "from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z"),
        ("anomalies", "limit=1000&sensor_type=VIBRATION"),
        ("anomalies", "sensor_type=co2"),
        ("metrics", ""),
        ("metrics", "x=1"),
        ("health", ""),
        ("dlq", "status=dead&topic=sensor-readings&limit=10"),
        ("dlq", "status=unknown"),
        ("dlq_entry", ""),
    ]
    for i, (route, query) in enumerate(seeds):
        write("query", "%02d_%s" % (i, route),
              bytes([routes[route]]) + query.encode())
    write("query", "post_replay", bytes([routes["dlq_replay"] | 8]))
    write("query", "post_latest", bytes([routes["latest"] | 8]) + b"limit=1")
    for i, raw in enumerate(["/api/v1/dlq/9223372036854775807?",
                             "/api/v1/dlq/0",
                             "/api/v1/dlq/123456789012345678/replay",
                             "/nowhere?limit=1",
                             "/api/v1/sensors/latest?limit=3&sensor_id=a"]):
        write("query", "raw_path_%d" % i, b"\x80" + raw.encode())


# ---- Record JSON ----------------------------------------------------------


def json_seeds():
    # Selector: bit 0 = event, bit 1 = raw numbers instead of JSON text.
    write("json", "reading", b"\x00" + READING_JSON.encode())
    write("json", "reading_iso_time", b"\x00" + READING_JSON.replace(
        "1767225600000", '"2026-01-01T00:00:00.123+02:00"').encode())
    write("json", "reading_scored", b"\x00" + READING_JSON.replace(
        '"unit":"C"', '"unit":null,"anomaly":true,'
        '"anomaly_score":-0.61').encode())
    write("json", "reading_big_numbers", b"\x00" + READING_JSON.replace(
        "21.5", "1.7976931348623157e308").replace(
        "1767225600000", "-9223372036854775808").encode())
    write("json", "reading_nul", b"\x00" + READING_JSON.replace(
        "temp-01", "temp\\u0000").encode())
    write("json", "reading_missing", b"\x00" + b'{"sensor_id":"x"}')
    write("json", "event", b"\x01" + EVENT_JSON.encode())
    write("json", "event_all", b"\x01" + EVENT_JSON.replace(
        '"currency":"EUR"', '"currency":"EUR","total":39.98,'
        '"duration_seconds":0.0,"page":"/p","payment_method":"card",'
        '"shipping_address":"x","query":"q","results_count":-1,'
        '"product_name":"\\u00e9","category":"c"').encode())
    write("json", "event_negative_zero", b"\x01" + EVENT_JSON.replace(
        "19.99", "-0.0").encode())
    nan = struct.pack("<d", float("nan"))
    inf = struct.pack("<d", float("inf"))
    raw_base = (struct.pack("<q", 1767225600000) + nan + inf +
                struct.pack("<ii", 80, -60) + bytes([3, 7, 2, 1]))
    write("json", "raw_nan", b"\x02" + raw_base + nan * 8)
    write("json", "raw_extreme_time", b"\x02" + struct.pack(
        "<q", 2**63 - 1) + raw_base[8:] + struct.pack("<q", -2**63) * 8)
    write("json", "raw_zero", b"\x02")


# ---- Schema registry requests ---------------------------------------------


def registry_seeds():
    import json
    with open(os.path.join(REPO, "schemas/sensor_reading.avsc")) as f:
        v1 = json.dumps(json.load(f), separators=(",", ":"))
    folder = os.path.join(REPO, "tests/fixtures/schemas")
    others = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.avsc"))):
        with open(path) as f:
            others[os.path.basename(path)[:-5]] = json.dumps(
                json.load(f), separators=(",", ":"))

    def body(schema):
        return json.dumps({"schema": schema}, separators=(",", ":"))

    s = "/subjects/sensor-readings-value"
    write("registry", "register", "P%s/versions %s\nG%s/versions\n"
          "G%s/versions/latest\nG/schemas/ids/1\nG/subjects" %
          (s, body(v1), s, s))
    for name, text in others.items():
        write("registry", "evolve_" + name,
              "P%s/versions %s\nP/compatibility%s/versions/latest %s\n"
              "P%s/versions %s\nG%s/versions/2" %
              (s, body(v1), s, body(text), s, body(text), s))
    for level in ("NONE", "FORWARD", "FULL_TRANSITIVE", "bogus"):
        write("registry", "level_" + level.lower(),
              "U/config {\"compatibility\":\"%s\"}\n"
              "U/config/a%%2Fb {\"compatibility\":\"%s\"}\n"
              "P/subjects/a%%2Fb/versions %s\n"
              "P/subjects/a%%2Fb/versions %s\nG/config/a%%2Fb\n"
              "D/config/a%%2Fb\nD/config" %
              (level, level, body(v1), body(others["sensor_reading_v2"])))
    write("registry", "primitive", "P/subjects/p/versions " +
          body('"string"') + "\nP/subjects/p/versions " + body('"long"'))
    write("registry", "bad_bodies", "P/subjects/p/versions \n"
          "P/subjects/p/versions {\"schema\":1}\n"
          "P/subjects/p/versions {\"schema\":\"{\"}\n"
          "P/subjects/p/versions {\"schema\":\"\\\"x\\\"\",\"schemaType\":"
          "\"JSON\"}\nP/subjects/p/versions [1]")
    write("registry", "bad_paths", "G/subjects/%zz/versions\nG/schemas/ids/-1\n"
          "G/schemas/ids/99999999999\nG/subjects/s/versions/0\n"
          "G/subjects/s/versions/x\nX/subjects\nG/config/\nG/nowhere")
    write("registry", "recursive", "P/subjects/r/versions " + body(json.dumps({
        "type": "record", "name": "Node", "fields": [
            {"name": "next", "type": ["null", "Node"]}]})))

# ---- Registry replies -----------------------------------------------------


def registry_client_seeds():
    import json
    # Selector: low three bits = call (register, schema, versions, check,
    # set level, fetch), high four bits = index into `statuses`.
    ok, not_found, conflict, unprocessable, error = 0, 8, 9, 10, 12
    with open(os.path.join(REPO, "schemas/sensor_reading.avsc")) as f:
        sensor = f.read()
    seeds = {
        "register_ok": (0, ok, '{"id":5}'),
        "register_zero": (0, ok, '{"id":0}'),
        "register_huge": (0, ok, '{"id":2147483648}'),
        "register_string_id": (0, ok, '{"id":"5"}'),
        "register_conflict": (0, conflict,
                              '{"error_code":409,"message":"incompatible"}'),
        "register_422": (0, unprocessable,
                         '{"error_code":42201,"message":"Invalid schema"}'),
        "schema_ok": (1, ok, json.dumps({"schema": '"string"'})),
        "schema_not_found": (1, not_found,
                             '{"error_code":40403,"message":"Schema not found"}'),
        "schema_not_string": (1, ok, '{"schema":{"type":"string"}}'),
        "schema_not_json": (1, ok, "<html>oops</html>"),
        "schema_500_text": (1, error, "Internal Server Error"),
        "versions_ok": (2, ok, "[1,2,3]"),
        "versions_mixed": (2, ok, '[1,"2",null]'),
        "versions_object": (2, ok, '{"versions":[1]}'),
        "versions_empty": (2, ok, "[]"),
        "check_true": (3, ok, '{"is_compatible":true}'),
        "check_false": (3, ok, '{"is_compatible":false,"messages":["a","b",'
                               '1,null,"' + "x" * 600 + '"]}'),
        "check_no_flag": (3, ok, '{"messages":[]}'),
        "set_level_ok": (4, ok, '{"compatibility":"FULL"}'),
        "set_level_empty": (4, ok, ""),
        "fetch_sensor": (5, ok, json.dumps({"schema": sensor})),
        "fetch_duplicate_names": (5, ok, json.dumps({"schema": json.dumps({
            "type": "record", "name": "R", "fields": [
                {"name": "a", "type": {"type": "enum", "name": "E",
                                       "symbols": ["A"]}},
                {"name": "b", "type": {"type": "enum", "name": "E",
                                       "symbols": ["A"]}}]})})),
        "fetch_not_avro": (5, ok, '{"schema":"{\\"type\\":\\"nope\\"}"}'),
        "fetch_not_found": (5, not_found, '{"error_code":40403}'),
        "fetch_unavailable": (5, 13, ""),
    }
    for name, (call, status, body) in seeds.items():
        write("registry_client", name, bytes([status << 4 | call]) +
              body.encode())

# ---- WebSocket filters and control messages -------------------------------


def ws_control_seeds():
    # Selector: bit 0 = alerts stream. First line: the URL's query string;
    # each further line: one control message.
    sensors, alerts = 0, 1
    seeds = {
        "subscribe": (sensors, "", ['{"action":"subscribe"}']),
        "url_filter": (sensors, "sensor_type=temperature,humidity&"
                       "sensor_id=t-1&location=hall", ['{"action":'
                                                       '"get_filter","id":7}']),
        "set_filter": (sensors, "", [
            '{"action":"set_filter","id":"a","sensor_id":["t-1","h-\\u00e9"],'
            '"sensor_type":["temperature"],"location":["hall"]}',
            '{"action":"get_filter"}']),
        "unsubscribe_fields": (sensors, "sensor_id=t-1", [
            '{"action":"unsubscribe","sensor_id":["t-1"]}',
            '{"action":"unsubscribe"}', '{"action":"subscribe"}']),
        "bad_messages": (sensors, "sensor_type=co2", [
            "", "not json", "[]", '{"action":1}', '{"action":"dance"}',
            '{"action":"subscribe","id":1.5}',
            '{"action":"set_filter","sensor_id":"t-1"}',
            '{"action":"set_filter","sensor_id":[1]}',
            '{"action":"set_filter","severity":["critical"]}',
            '{"action":"subscribe","action":"unsubscribe"}']),
        "many_values": (sensors, "&".join("sensor_id=s%d" % i
                                          for i in range(40)), [
            '{"action":"set_filter","location":[%s]}' % ",".join(
                '"%s"' % ("x" * 300 if i == 3 else "l%d" % i)
                for i in range(40))]),
        "alerts": (alerts, "severity=critical,warning&sensor_type=pressure", [
            '{"action":"set_filter","severity":["info"],"sensor_id":["p-2"]}',
            '{"action":"set_filter","location":["hall"]}',
            '{"action":"get_filter","id":-9223372036854775808}']),
        "alerts_bad_url": (alerts, "location=hall&severity=", []),
    }
    for name, (stream, query, messages) in seeds.items():
        write("ws_control", name, bytes([stream]) +
              "\n".join([query] + messages).encode())


# ---- Compatibility pairs --------------------------------------------------


def compat_seeds():
    texts = {}
    for path in [os.path.join(REPO, "schemas/sensor_reading.avsc"),
                 os.path.join(REPO, "schemas/ecommerce_event.avsc")] + sorted(
            glob.glob(os.path.join(REPO, "tests/fixtures/schemas/*.avsc"))):
        with open(path, "rb") as f:
            texts[os.path.basename(path)[:-5]] = f.read()
    base = texts["sensor_reading"]
    for level, (name, text) in enumerate(sorted(texts.items())):
        write("compat", name, bytes([level % 7]) + text + b"\x00" + base)
        write("compat", name + "_reverse", bytes([(level + 3) % 7]) + base +
              b"\x00" + text)
    pairs = {
        "int_long": (b'"int"', b'"long"'),
        "long_int": (b'"long"', b'"int"'),
        "float_double": (b'"float"', b'"double"'),
        "string_bytes": (b'"string"', b'"bytes"'),
        "union_null": (b'["null","int"]', b'"int"'),
        "enum_symbols": (b'{"type":"enum","name":"E","symbols":["A","B"]}',
                         b'{"type":"enum","name":"E","symbols":["A"],'
                         b'"default":"A"}'),
        "fixed_size": (b'{"type":"fixed","name":"F","size":4}',
                       b'{"type":"fixed","name":"F","size":8}'),
        "map_array": (b'{"type":"map","values":"int"}',
                      b'{"type":"array","items":"int"}'),
        "not_json": (b"{", b"[]"),
        "recursive": (b'{"type":"record","name":"N","fields":[{"name":"n",'
                      b'"type":["null","N"]}]}',
                      b'{"type":"record","name":"N","fields":[{"name":"n",'
                      b'"type":["null","N"],"default":null},{"name":"v",'
                      b'"type":"int","default":0}]}'),
    }
    for name, (a, b) in pairs.items():
        write("compat", "pair_" + name, b"\x00" + a + b"\x00" + b)


if __name__ == "__main__":
    frame_seeds()
    replay_seeds()
    query_seeds()
    json_seeds()
    registry_seeds()
    registry_client_seeds()
    ws_control_seeds()
    compat_seeds()
