"""Bad input for every field of every member, auth and seller endpoint: 400 VALIDATION_ERROR naming
the field, never a 500; and what valid input in other scripts looks like."""

from __future__ import annotations

import json

import pytest

from tests.support.accounts import new_account
from tests.support.auth_flow import api, reset_local_ip_throttle
from tests.support.mail import new_email, new_registration_number

SQL = "'; DROP TABLE members; --"
TAUTOLOGY = "1' OR '1'='1"
FULLWIDTH_PHONE = "02-555-0100".translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
FULLWIDTH_REGISTRATION = "123-45-67891".translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
WRONG_TYPES = [123, 1.5, True, None, [], {}]


def _bad_strings(max_length: int, *, unicode_bad: str) -> list[object]:
    return ["", "   ", "x" * (max_length + 1), unicode_bad, SQL, TAUTOLOGY, "a\x00b", "\ud800x"]


SIGN_UP = {"email": "x@example.test", "password": "password-123", "name": "Kim Minsu",
           "phone": "010-1234-5678", "address": "12 Seongsu-ro, Seoul"}
CASES = {
    # endpoint, valid body, {field: bad values}
    "sign_up": ("POST", "/members", SIGN_UP, {
        "email": [*WRONG_TYPES, "", "no-at-sign", "a@b", "a@@b.co", "ü@example.test", "a@exämple.test", SQL,
                  f"{'a' * 250}@x.co", "a b@example.test", "a..b@example.test"],
        "password": [*WRONG_TYPES, "", "short", "x" * 129, "pass\x00word-123", "\ud800" * 9],
        "name": [*WRONG_TYPES, *_bad_strings(100, unicode_bad="Kim 🎉"), "Kim\u202eMinsu", "R2D2"],
        "phone": [123, [], "", "abc-defg-hijk", "010-1234", "+82 10 1234 5678 9999 1", "٠١٠١٢٣٤٥٦٧٨", SQL,
                  "1" * 31, "010--1234-5678"],
        "address": [123, [], *_bad_strings(255, unicode_bad="Seoul \u200b road")],
    }),
    "login": ("POST", "/auth/login", {"email": "x@example.test", "password": "password-123"}, {
        "email": [*WRONG_TYPES, "", SQL, "ü@example.test", "x" * 300],
        "password": [*WRONG_TYPES, "", "x" * 1025, "pass\x00word"],
    }),
    "refresh": ("POST", "/auth/refresh", {"refreshToken": "abc"}, {
        "refreshToken": [*WRONG_TYPES, "", "x" * 201],
    }),
    "update_me": ("PATCH", "/members/me", {"name": "New Name"}, {
        "name": [123, [], {}, True, *_bad_strings(100, unicode_bad="Kim 🎉")],
        "phone": [123, "", "abc", SQL, "٠١٠١٢٣٤٥٦٧٨"],
        "address": [123, [], *_bad_strings(255, unicode_bad="Seoul\u2028road")],
    }),
    "password": ("PATCH", "/members/me/password", {"currentPassword": "test-pass-123", "newPassword": "new-pass-123"}, {
        "currentPassword": [*WRONG_TYPES, "", "x" * 1025],
        "newPassword": [*WRONG_TYPES, "", "short", "x" * 129, "a\x07bcdefghi"],
    }),
    "sellers": ("POST", "/sellers", {"shopName": "Drop Shop", "address": "1 Test-ro, Seoul",
                                     "contactNumber": "02-555-0100", "registrationNumber": "123-45-67891"}, {
        "shopName": [*WRONG_TYPES, *_bad_strings(100, unicode_bad="Shop\u0007")],
        "address": [*WRONG_TYPES, *_bad_strings(255, unicode_bad="Seoul 🎉")],
        "contactNumber": [*WRONG_TYPES, "", "call me", "12", SQL, FULLWIDTH_PHONE],
        "registrationNumber": [*WRONG_TYPES, "", "123-45-67890", "12345678", "123-456-7890", FULLWIDTH_REGISTRATION,
                               SQL, "x" * 21],
    }),
}
OPTIONAL = {("sign_up", "phone"), ("sign_up", "address"), ("update_me", "phone"), ("update_me", "address"),
            ("update_me", "name")}  # leaving these out is valid
CALLS = [(case, field, value) for case, (_, _, _, fields) in CASES.items() for field, values in fields.items()
         for value in [*values, *([] if (case, field) in OPTIONAL else ["<missing>"])]]


def _send(client, method, path, body, headers):
    """JSON with non-ASCII escaped, so even unpaired surrogates (`\\ud800`) reach the server."""
    return client.request(method, path, content=json.dumps(body).encode(),
                          headers=headers | {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def client(stack):
    with api() as http:
        yield http
    reset_local_ip_throttle()


@pytest.fixture(scope="module")
def member_headers(stack):
    return new_account().headers()


@pytest.mark.parametrize(("case", "field", "value"), CALLS, ids=[f"{c}-{f}-{i}" for i, (c, f, _) in enumerate(CALLS)])
def test_bad_field_is_400_naming_it(client, member_headers, case, field, value):
    method, path, valid, _ = CASES[case]
    body = {k: v for k, v in valid.items() if k != field} if value == "<missing>" else valid | {field: value}
    response = _send(client, method, path, body, member_headers)
    assert response.status_code == 400, (body, response.text)
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]["fields"], error


@pytest.mark.parametrize("case", list(CASES))
def test_unknown_fields_and_non_objects_are_400(client, member_headers, case):
    method, path, valid, _ = CASES[case]
    for body, named in ((valid | {"isAdmin": True}, "isAdmin"), ([valid], "body"), ("text", "body")):
        response = _send(client, method, path, body, member_headers)
        assert response.status_code == 400 and named in response.json()["error"]["details"]["fields"], response.text
    broken = client.request(method, path, content=b'{"email": ', headers=member_headers | {"Content-Type":
                                                                                            "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "VALIDATION_ERROR"
    wrong_type = client.request(method, path, content=b"email=x", headers=member_headers | {"Content-Type":
                                                                                             "text/plain"})
    assert wrong_type.status_code == 415


def test_empty_profile_update_and_null_name_are_400(client, member_headers):
    for body, named in (({}, "body"), ({"name": None}, "body")):
        response = client.patch("/members/me", json=body, headers=member_headers)
        assert response.status_code == 400 and named in response.json()["error"]["details"]["fields"]


def test_new_password_must_differ(client, member_headers):
    response = client.patch("/members/me/password", json={"currentPassword": "same-pass-1",
                                                          "newPassword": "same-pass-1"}, headers=member_headers)
    assert response.status_code == 400 and "body" in response.json()["error"]["details"]["fields"]


def test_valid_input_in_other_scripts_is_kept_as_given(client):
    body = {"email": f"  {new_email().upper()}", "password": "비밀번호는여덟자이상", "name": "O'Brien-김 Jr.",
            "phone": "+82 10-1234-5678", "address": "서울특별시 성동구 성수이로 12, 3층 (성수동) #301"}
    response = client.post("/members", json=body)
    assert response.status_code == 202, response.text
    email = response.json()["email"]
    assert email == body["email"].strip().lower()
    # The password was NFKC-normalised before hashing: the same password signs in.
    signed_in = client.post("/auth/login", json={"email": email, "password": body["password"]})
    assert signed_in.status_code == 200
    member = client.get("/members/me", headers={"Authorization": f"Bearer {signed_in.json()['accessToken']}"}).json()
    assert member["email"] == email and member["name"] == body["name"]
    assert member["phone"] == body["phone"] and member["address"] == body["address"]


def test_registration_number_is_normalised(client):
    member = new_account()
    number = new_registration_number()
    response = client.post("/sellers", json={"shopName": f"가게 {member.member_id}", "address": "1 Test-ro, Seoul",
                                             "contactNumber": "02-555-0100",
                                             "registrationNumber": number.replace("-", "")},
                           headers=member.headers())
    assert response.status_code == 201, response.text
    assert response.json()["seller"]["registrationNumber"] == number
