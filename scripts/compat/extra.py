#!/usr/bin/env python3
"""Exchanges of issue 12 (Kratos compatibility) that ../shared/spec/samples
does not hold, captured in the samples' format so that
../shared/tools/compare.py holds them against scripts/compat/extra-samples/.

Those expected samples are our own gateway's answers, checked against what
a running Kratos v26.2 answers (status, the nodes and message ids the issue
states for each); they pin the behaviour so a regression shows in the
replay. Uses the shared capture.py's helpers (imported, not run).

Environment: OUT_DIR (where to write), SHARED_DIR (../shared), PUBLIC_PORT
(the reference gateway, 4433), IDFIRST_PORT (a gateway with login_style
identifier_first, 4436), ADMIN_PORT (a kratos_admin site, 4438).
"""
import json
import os
import sys

shared = os.environ.get("SHARED_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared")
sys.path.insert(0, os.path.join(shared, "tools"))
import capture  # noqa: E402  (the shared capture tool: helpers only)
from capture import J, PASSWORD, exchange, raw_json, rand_email, register_native, login_native_silent  # noqa: E402

IDFIRST_PORT = int(os.environ.get("IDFIRST_PORT", "4436"))
ADMIN_PORT = int(os.environ.get("ADMIN_PORT", "4438"))


def shrink_request_password():
    """The last exchange's recorded request carries a 1 MB password: keep a
    note of its size instead, so the sample stays small."""
    path = os.path.join(capture.OUT_DIR, capture.index[-1][0])
    with open(path) as f:
        doc = json.load(f)
    body = doc["request"]["body"]
    body["password"] = "<%d bytes of x>" % len(body["password"])
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")


def main():
    out = os.environ["OUT_DIR"]
    os.makedirs(out, exist_ok=True)
    capture.OUT_DIR = out

    # 2: registration validation messages land on the password node.
    st, _, flow = raw_json("GET", "/self-service/registration/api")
    exchange("registration-native-no-password", "Native registration, method=password without a password -> 400, 4000002 on the password node",
             "POST", "/self-service/registration?flow=%s" % flow["id"], J,
             {"method": "password", "traits": {"email": rand_email("nopw")}}, expect=400)
    st, _, flow = raw_json("GET", "/self-service/registration/api")
    exchange("registration-native-short-password", "Native registration with password a1 -> 400, 4000032 on the password node",
             "POST", "/self-service/registration?flow=%s" % flow["id"], J,
             {"method": "password", "password": "a1", "traits": {"email": rand_email("shortpw")}}, expect=400)

    # 3: a 1 MB password.
    big = "x" * (1 << 20)
    st, _, flow = raw_json("GET", "/self-service/login/api")
    exchange("login-native-1mb-password", "Native login with a 1 MB password -> 400 with 4000006 on the flow",
             "POST", "/self-service/login?flow=%s" % flow["id"], J,
             {"method": "password", "identifier": rand_email("bigpw"), "password": big}, expect=400)
    shrink_request_password()
    st, _, flow = raw_json("GET", "/self-service/registration/api")
    exchange("registration-native-1mb-password", "Native registration with a 1 MB password -> 400 with 4000033 on the password node",
             "POST", "/self-service/registration?flow=%s" % flow["id"], J,
             {"method": "password", "password": big, "traits": {"email": rand_email("bigpw")}}, expect=400)
    shrink_request_password()

    # 5: listMySessions with page_size=1 (the identity's other sessions).
    email = rand_email("pages")
    register_native(email)
    login_native_silent(email)
    token = login_native_silent(email)["session_token"]
    exchange("sessions-list-page-size-1", "listMySessions page_size=1 with two other sessions -> 200, one session, Link with page_token",
             "GET", "/sessions?page_size=1", J, token=token, expect=200)

    # 17: a doubled slash before an API path.
    st, _, flow = raw_json("GET", "/self-service/login/api")
    exchange("login-double-slash", "GET //self-service/login/flows?id=<id> -> 307 to the cleaned path",
             "GET", "//self-service/login/flows?id=%s" % flow["id"], J, expect=307)

    # 11: identifier-first login, both steps (gateway with login_style identifier_first).
    st, _, flow = exchange("login-idfirst-create", "createNativeLoginFlow with login_style identifier_first -> step one: identifier and Continue",
                           "GET", "/self-service/login/api", J, expect=200, port=IDFIRST_PORT)
    email = rand_email("idfirst")
    st, hl, raw = capture.raw_request("GET", "/self-service/registration/api", J, None, port=IDFIRST_PORT)
    reg = json.loads(raw)
    st, hl, raw = capture.raw_request("POST", "/self-service/registration?flow=%s" % reg["id"],
                                      {"Accept": "application/json", "Content-Type": "application/json"},
                                      json.dumps({"method": "password", "password": PASSWORD, "traits": {"email": email}}), port=IDFIRST_PORT)
    assert st == 200, (st, raw[:300])
    exchange("login-idfirst-submit-identifier", "Identifier-first step two: the identifier hidden and the password field -> 400 flow",
             "POST", "/self-service/login?flow=%s" % flow["id"], J,
             {"method": "identifier_first", "identifier": email}, expect=400, port=IDFIRST_PORT)

    # 15: an unknown identity schema on registration.
    exchange("registration-native-unknown-schema", "createNativeRegistrationFlow?identity_schema=nope -> 400",
             "GET", "/self-service/registration/api?identity_schema=nope", J, expect=400)
    exchange("schemas-list", "listIdentitySchemas -> 200 with every schema",
             "GET", "/schemas", J, expect=200)

    # 18: Kratos's admin API at its own paths (kratos_admin).
    exchange("admin-identities-list", "GET /admin/identities on a kratos_admin site -> 200 list",
             "GET", "/admin/identities?page_size=1", J, expect=200, port=ADMIN_PORT)
    exchange("admin-health-alive", "GET /admin/health/alive on a kratos_admin site -> 200",
             "GET", "/admin/health/alive", J, expect=200, port=ADMIN_PORT)

    if capture.deviations:
        print("\n".join(capture.deviations))
        sys.exit(1)


if __name__ == "__main__":
    main()
