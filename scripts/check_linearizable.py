#!/usr/bin/env python3
"""Check the local AWS stack's DynamoDB semantics that kincode relies on.

Run under the local stack:

    scripts/with-local-stack.sh python3 scripts/check_linearizable.py

Needs boto3 (in the venv) and KINCODE_AWS_ENDPOINT. Checks (non-zero exit if a
hard check fails):
  1. 40 concurrent capped TransactWriteItems (cap 8): exactly 8 succeed,
     n == 8, exactly 8 BIND items.
  2. A cancelled transaction reports CancellationReasons with
     ConditionalCheckFailed at the right index (raw response printed), and
     whether ReturnValuesOnConditionCheckFailure=ALL_OLD returns the Item.
  3. ClientRequestToken on TransactWriteItems as DynamoDB documents it: same token and
     request, success and no change; same token, other request,
     IdempotentParameterMismatchException (scripts/local_stack.py teaches moto the token).
  3b. Injected faults (scripts/local_stack.py's /_kincode/faults): a lost answer retried
     by the SDK applies once; a 500 and a throttle apply nothing.
Reports (informational, no failure):
  4. GSIs keyed on String / Number attributes.
  5. UpdateTimeToLive / DescribeTimeToLive (and whether items expire).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.request
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

CAP = 8
WORKERS = 40

endpoint = os.environ.get("KINCODE_AWS_ENDPOINT")
if not endpoint:
    sys.exit("KINCODE_AWS_ENDPOINT is not set (run via scripts/with-local-stack.sh)")

ddb = boto3.client(
    "dynamodb",
    endpoint_url=endpoint,
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
    config=Config(max_pool_connections=WORKERS + 10, retries={"max_attempts": 1}),
)

# Capture raw HTTP bodies of TransactWriteItems responses (what a non-boto
# SDK, e.g. the Rust one, actually parses).
raw_bodies: list[tuple[int, object, bytes]] = []


def _capture(response_dict, **_kw):
    raw_bodies.append(
        (response_dict["status_code"], response_dict["headers"], response_dict["body"])
    )


ddb.meta.events.register("before-parse.dynamodb.TransactWriteItems", _capture)

failures: list[str] = []


def check(cond: bool, msg: str) -> None:
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def make_table(name: str, **extra) -> None:
    attrs = [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ] + extra.pop("ExtraAttributes", [])
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=attrs,
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})


def capped_txn(table: str, i: str, *, token: str | None = None, all_old: bool = False):
    update = {
        "TableName": table,
        "Key": {"pk": {"S": "G"}, "sk": {"S": "META"}},
        "UpdateExpression": "SET n = if_not_exists(n, :z) + :one",
        "ConditionExpression": "attribute_not_exists(n) OR n < :max",
        "ExpressionAttributeValues": {
            ":z": {"N": "0"},
            ":one": {"N": "1"},
            ":max": {"N": str(CAP)},
        },
    }
    if all_old:
        update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    kw = {}
    if token:
        kw["ClientRequestToken"] = token
    return ddb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": table,
                    "Item": {"pk": {"S": "G"}, "sk": {"S": f"BIND#{i}"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": update},
        ],
        **kw,
    )


def count_binds(table: str) -> int:
    r = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :g AND begins_with(sk, :b)",
        ExpressionAttributeValues={":g": {"S": "G"}, ":b": {"S": "BIND#"}},
        Select="COUNT",
        ConsistentRead=True,
    )
    return r["Count"]


def get_n(table: str) -> int | None:
    item = ddb.get_item(
        TableName=table, Key={"pk": {"S": "G"}, "sk": {"S": "META"}}, ConsistentRead=True
    ).get("Item")
    return int(item["n"]["N"]) if item and "n" in item else None


# --- 1. linearizability of capped transactions -------------------------------
def test_concurrent_cap() -> None:
    print(f"== 1. {WORKERS} concurrent capped TransactWriteItems (cap {CAP})")
    table = "lin_check"
    make_table(table)
    barrier = threading.Barrier(WORKERS)
    results: dict[str, int] = {}
    other: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        try:
            capped_txn(table, str(i))
            key = "ok"
        except ClientError as e:
            key = e.response["Error"]["Code"]
            if key != "TransactionCanceledException":
                with lock:
                    other.append(f"{i}: {key}: {e.response['Error'].get('Message')}")
        except Exception as e:  # noqa: BLE001
            key = type(e).__name__
            with lock:
                other.append(f"{i}: {e!r}")
        with lock:
            results[key] = results.get(key, 0) + 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    n, binds = get_n(table), count_binds(table)
    print(f"     outcomes={results} n={n} bind_items={binds} ({dt:.2f}s)")
    for o in other:
        print(f"     unexpected: {o}")
    check(results.get("ok", 0) == CAP, f"exactly {CAP} transactions succeeded")
    check(
        results.get("TransactionCanceledException", 0) == WORKERS - CAP,
        f"exactly {WORKERS - CAP} cancelled with TransactionCanceledException",
    )
    check(n == CAP, f"n == {CAP}")
    check(binds == CAP, f"exactly {CAP} BIND items")


# --- 2. cancellation reasons -------------------------------------------------
def show_cancel(label: str, **kw) -> list[dict] | None:
    raw_bodies.clear()
    try:
        capped_txn("lin_check", f"extra-{label}", **kw)
    except ClientError as e:
        status, headers, body = raw_bodies[-1]
        print(f"     [{label}] HTTP {status}, x-amzn-ErrorType={headers.get('x-amzn-ErrorType')!r}")
        print(f"     [{label}] raw body: {body.decode()}")
        parsed = {k: v for k, v in e.response.items() if k != "ResponseMetadata"}
        print(f"     [{label}] boto3 parsed: {json.dumps(parsed, default=str)}")
        return e.response.get("CancellationReasons")
    print(f"     [{label}] unexpectedly succeeded")
    return None


def test_cancellation_reasons() -> None:
    print("== 2. CancellationReasons of a cancelled transaction (index 1 must fail)")
    reasons = show_cancel("plain")
    check(
        bool(reasons) and len(reasons) == 2,
        "CancellationReasons has one entry per TransactItem",
    )
    if reasons and len(reasons) == 2:
        check(reasons[0].get("Code") == "None", "reason[0].Code == 'None' (Put would pass)")
        check(
            reasons[1].get("Code") == "ConditionalCheckFailed",
            "reason[1].Code == 'ConditionalCheckFailed'",
        )
        print(f"     reason[1] has Item without ALL_OLD: {'Item' in reasons[1]}")
    reasons = show_cancel("all_old", all_old=True)
    if reasons and len(reasons) == 2:
        item = reasons[1].get("Item")
        print(f"     ALL_OLD: reason[1].Item = {json.dumps(item)}")
        print(f"     INFO ReturnValuesOnConditionCheckFailure=ALL_OLD returns Item: {item is not None}")
    check(count_binds("lin_check") == CAP, "cancelled transactions wrote nothing")


# --- 3. ClientRequestToken ---------------------------------------------------
def test_client_request_token() -> None:
    print("== 3. ClientRequestToken idempotency (as DynamoDB documents it)")
    table = "tok_check"
    make_table(table)
    token = str(uuid.uuid4())

    def bump(token: str, amount: str = "1"):
        return ddb.transact_write_items(
            ClientRequestToken=token,
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "T"}, "sk": {"S": "C"}},
                        "UpdateExpression": "ADD c :one",
                        "ExpressionAttributeValues": {":one": {"N": amount}},
                    }
                }
            ],
        )

    def c() -> int:
        it = ddb.get_item(TableName=table, Key={"pk": {"S": "T"}, "sk": {"S": "C"}},
                          ConsistentRead=True)["Item"]
        return int(it["c"]["N"])

    outcomes = []
    for label, args in (("first", (token,)), ("same token, same payload", (token,)),
                        ("same token, different payload", (token, "5")),
                        ("another token, same payload", (str(uuid.uuid4()),))):
        try:
            bump(*args)
            outcomes.append((label, "success", c()))
        except ClientError as e:
            outcomes.append((label, e.response["Error"]["Code"], c()))
    for o in outcomes:
        print(f"     INFO {o[0]}: {o[1]}, c={o[2]}")
    check(outcomes[0][1:] == ("success", 1), "the first transaction applies")
    check(outcomes[1][1:] == ("success", 1), "same token, same request: success, no change")
    check(outcomes[2][1:] == ("IdempotentParameterMismatchException", 1),
          "same token, other request: IdempotentParameterMismatchException, no change")
    check(outcomes[3][1:] == ("success", 2), "another token applies again")
    print(f"     INFO ClientRequestToken honoured: {outcomes[1][2] == 1}")


# --- 3b. Faults on demand --------------------------------------------------------
def fault(rule: dict) -> None:
    request = urllib.request.Request(
        f"{endpoint}/_kincode/faults", data=json.dumps(rule).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 201, answer.status


def test_faults() -> None:
    print("== 3b. injected faults: a lost answer, then the SDK's retry with the same token")
    table = "fault_check"
    make_table(table)
    retrying = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )
    fault({"operation": "TransactWriteItems", "scope": table, "fault": "lost_answer"})
    retrying.transact_write_items(TransactItems=[{"Put": {
        "TableName": table, "Item": {"pk": {"S": "G"}, "sk": {"S": "BIND#once"}},
        "ConditionExpression": "attribute_not_exists(pk)"}}])
    check(count_binds(table) == 1, "a lost answer retried with its token: applied once, answered success")
    for kind, code in (("internal_error", "InternalServerError"), ("throttle", "ThrottlingException")):
        fault({"operation": "PutItem", "scope": table, "fault": kind, "times": -1})
        try:
            ddb.put_item(TableName=table, Item={"pk": {"S": "G"}, "sk": {"S": f"BIND#{kind}"}})
            got = "success"
        except ClientError as e:
            got = e.response["Error"]["Code"]
        check(got == code and count_binds(table) == 1, f"{kind}: {got}, nothing applied")
        urllib.request.urlopen(urllib.request.Request(
            f"{endpoint}/_kincode/faults?scope={table}", method="DELETE"))


# --- 4. GSIs on String / Number attributes ------------------------------------
def test_gsi() -> None:
    print("== 4. GSIs on String and Number attributes")
    table = "gsi_check"
    make_table(
        table,
        ExtraAttributes=[
            {"AttributeName": "email", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "score", "AttributeType": "N"},
            {"AttributeName": "num", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {"IndexName": "by_email",
             "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": "by_owner_score",
             "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"},
                           {"AttributeName": "score", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "KEYS_ONLY"}},
            {"IndexName": "by_num",
             "KeySchema": [{"AttributeName": "num", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}},
        ],
    )
    for i, score in enumerate([5, 30, 12]):
        ddb.put_item(TableName=table, Item={
            "pk": {"S": f"U{i}"}, "sk": {"S": "P"}, "email": {"S": f"u{i}@x"},
            "owner": {"S": "o1"}, "score": {"N": str(score)}, "num": {"N": str(100 + i)}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "sparse"}, "sk": {"S": "P"}})
    r = ddb.query(TableName=table, IndexName="by_email",
                  KeyConditionExpression="email = :e",
                  ExpressionAttributeValues={":e": {"S": "u1@x"}})
    check([it["pk"]["S"] for it in r["Items"]] == ["U1"], "GSI hash S: query by email")
    r = ddb.query(TableName=table, IndexName="by_owner_score",
                  KeyConditionExpression="#o = :o AND score > :s",
                  ExpressionAttributeNames={"#o": "owner"},
                  ExpressionAttributeValues={":o": {"S": "o1"}, ":s": {"N": "6"}})
    got = [(it["pk"]["S"], it["score"]["N"]) for it in r["Items"]]
    check(got == [("U2", "12"), ("U1", "30")], f"GSI S hash + N range, sorted numerically: {got}")
    r = ddb.query(TableName=table, IndexName="by_num",
                  KeyConditionExpression="num = :n",
                  ExpressionAttributeValues={":n": {"N": "102"}})
    check([it["pk"]["S"] for it in r["Items"]] == ["U2"], "GSI hash N: query by num")
    r = ddb.scan(TableName=table, IndexName="by_email")
    check(r["Count"] == 3, f"GSI is sparse (item without key attr not indexed): {r['Count']}")


# --- 5. TTL ------------------------------------------------------------------
def test_ttl() -> None:
    print("== 5. UpdateTimeToLive / DescribeTimeToLive")
    table = "ttl_check"
    make_table(table)
    try:
        r = ddb.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        print(f"     INFO UpdateTimeToLive -> {r['TimeToLiveSpecification']}")
        d = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        print(f"     INFO DescribeTimeToLive -> {d}")
        check(d.get("TimeToLiveStatus") == "ENABLED" and d.get("AttributeName") == "expires_at",
              "TTL enabled on expires_at")
        try:
            ddb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
            )
            print("     INFO enabling TTL twice: success")
        except ClientError as e:
            print(f"     INFO enabling TTL twice: {e.response['Error']['Code']}: "
                  f"{e.response['Error'].get('Message')}")
        ddb.put_item(TableName=table, Item={
            "pk": {"S": "X"}, "sk": {"S": "Y"}, "expires_at": {"N": str(int(time.time()) - 3600)}})
        still = "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "X"}, "sk": {"S": "Y"}})
        print(f"     INFO item with expires_at 1h in the past still readable: {still}")
    except ClientError as e:
        check(False, f"UpdateTimeToLive: {e.response['Error']}")


def main() -> int:
    test_concurrent_cap()
    test_cancellation_reasons()
    test_client_request_token()
    test_faults()
    test_gsi()
    test_ttl()
    if failures:
        print(f"\n{len(failures)} check(s) FAILED:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
