#!/usr/bin/env bash
# TeamCity build step (command line runner): trigger an Airflow DAG run with the API token that
# Rotator pushes into the password parameter env.AIRFLOW_API_TOKEN, or (identity mode) with the
# build's own OIDC token, checked by Rotator's identity endpoint in Airflow: nothing stored.
#
#   AIRFLOW_URL       e.g. https://airflow.example.com             (required)
#   AIRFLOW_DAG_ID    the DAG to trigger                           (required)
#   AIRFLOW_API_TOKEN the JWT; TeamCity masks it in the build log  (token mode only, from Rotator;
#                     leave it unset, or retire it, when builds use their identity)
#   TEAMCITY_BUILD_ID passed to the DAG run as conf.teamcity_build_id (TeamCity sets BUILD_ID;
#                     map it with env.TEAMCITY_BUILD_ID = %teamcity.build.id%)
#   MAX_ATTEMPTS      default 6; delays grow 1, 2, 4, 8, 16 s with up to 1 s of jitter
#
# Identity mode (AIRFLOW_AUTH=identity, or no AIRFLOW_API_TOKEN but a build token; AIRFLOW_API_TOKEN
# is then never needed nor read): the JWT is
#   TEAMCITY_BUILD_OIDC_TOKEN     the oidcTokenInParams build feature's parameter, or else one
#                                 fetched on demand (oidcTokenOnDemand) from
#   TEAMCITY_SERVER_URL           %teamcity.serverUrl%, with the build's own credentials
#   TEAMCITY_AUTH_USER_ID/PASSWORD  %teamcity.auth.userId% / %teamcity.auth.password%
#   AIRFLOW_OIDC_AUDIENCE         the audience [identity] audience names (default airflow-trigger)
# and the DAG run goes to ${AIRFLOW_URL}/rotator/identity/v1/dags/<dag>/dagRuns.
#
# conf.teamcity_sent_at (seconds since the epoch, when the body was written) lets the DAG's
# TeamCity sensor report the trigger-to-run-start latency (teamcity.dag_run_trigger_latency).
#
# The token never appears in argv: curl reads the header from stdin (-K -).
# Retries on connection errors, 429 and 5xx only. A 401 means the token is expired or was
# revoked: retrying cannot help, so the step fails at once and says what to check.
#
# Exit codes: 0 the DAG run was triggered; 1 Airflow refused it or kept failing, or TeamCity did
# not issue an on-demand token; 2 the step is not set up (a required variable above is empty, no
# token of either kind is available, AIRFLOW_AUTH is neither token nor identity, no python3/jq):
# nothing was sent.
set -euo pipefail
setup() { echo "$1" >&2; exit 2; }
[ -n "${AIRFLOW_URL:-}" ] || setup "set AIRFLOW_URL"
[ -n "${AIRFLOW_DAG_ID:-}" ] || setup "set AIRFLOW_DAG_ID"
MAX_ATTEMPTS="${MAX_ATTEMPTS:-6}"
AIRFLOW_AUTH="${AIRFLOW_AUTH:-}"
if [ -z "$AIRFLOW_AUTH" ]; then
    if [ -n "${AIRFLOW_API_TOKEN:-}" ]; then
        AIRFLOW_AUTH=token
    elif [ -n "${TEAMCITY_BUILD_OIDC_TOKEN:-}" ] || [ -n "${TEAMCITY_AUTH_PASSWORD:-}" ]; then
        AIRFLOW_AUTH=identity
    else
        setup "no token to trigger ${AIRFLOW_DAG_ID} with: neither env.AIRFLOW_API_TOKEN (pushed by Rotator) nor the build's OIDC token (env.TEAMCITY_BUILD_OIDC_TOKEN from the 'OIDC token in parameters' build feature, or TEAMCITY_SERVER_URL with TEAMCITY_AUTH_USER_ID/PASSWORD for an on-demand one) is set"
    fi
fi
case "$AIRFLOW_AUTH" in
    token|identity) ;;
    *) setup "AIRFLOW_AUTH must be token or identity" ;;
esac
if [ "$AIRFLOW_AUTH" = identity ]; then
    endpoint="${AIRFLOW_URL%/}/rotator/identity/v1/dags/${AIRFLOW_DAG_ID}/dagRuns"
    if [ -z "${TEAMCITY_BUILD_OIDC_TOKEN:-}" ]; then
        [ -n "${TEAMCITY_SERVER_URL:-}" ] || setup "identity mode without TEAMCITY_BUILD_OIDC_TOKEN needs TEAMCITY_SERVER_URL (%teamcity.serverUrl%) to fetch an on-demand token"
        [ -n "${TEAMCITY_AUTH_USER_ID:-}" ] || setup "set TEAMCITY_AUTH_USER_ID to %teamcity.auth.userId%"
        [ -n "${TEAMCITY_AUTH_PASSWORD:-}" ] || setup "set TEAMCITY_AUTH_PASSWORD to %teamcity.auth.password%"
        aud="${AIRFLOW_OIDC_AUDIENCE:-airflow-trigger}"
        # The build's credentials reach curl through stdin (-K -), never argv.
        TEAMCITY_BUILD_OIDC_TOKEN=$(printf 'user = "%s:%s"\n' "$TEAMCITY_AUTH_USER_ID" "$TEAMCITY_AUTH_PASSWORD" |
            curl -sS -f -K - --connect-timeout 5 --max-time 30 -G --data-urlencode "aud=${aud}" \
                "${TEAMCITY_SERVER_URL%/}/app/oidc-jwt/issue") || {
            echo "TeamCity did not issue an OIDC token for audience ${aud}: does this build configuration have the 'OIDC token on demand' feature listing it?" >&2
            exit 1
        }
    fi
    bearer="$TEAMCITY_BUILD_OIDC_TOKEN"
else
    [ -n "${AIRFLOW_API_TOKEN:-}" ] || setup "env.AIRFLOW_API_TOKEN is empty: has Rotator pushed it to this project? (or trigger with the build's identity: AIRFLOW_AUTH=identity)"
    bearer="$AIRFLOW_API_TOKEN"
    endpoint="${AIRFLOW_URL%/}/api/v2/dags/${AIRFLOW_DAG_ID}/dagRuns"
fi
# The request body comes from a real JSON encoder (python3, else jq), never from printf: a build
# id or any future field with a quote or backslash in it must not break or extend the JSON.
if command -v python3 >/dev/null 2>&1; then
    body=$(TEAMCITY_BUILD_ID="${TEAMCITY_BUILD_ID:-}" python3 -c 'import json, os, time; print(json.dumps({"logical_date": None, "conf": {"teamcity_build_id": os.environ.get("TEAMCITY_BUILD_ID", ""), "teamcity_sent_at": time.time()}}))')
elif command -v jq >/dev/null 2>&1; then
    body=$(jq -cn --arg id "${TEAMCITY_BUILD_ID:-}" '{logical_date: null, conf: {teamcity_build_id: $id, teamcity_sent_at: now}}')
else
    setup "this build step needs python3 or jq on the agent to write the request's JSON"
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

attempt=1
while :; do
    code=$(printf 'header = "Authorization: Bearer %s"\n' "$bearer" |
        curl -sS -K - -o "$out" -w '%{http_code}' --connect-timeout 5 --max-time 30 \
            -X POST -H 'Content-Type: application/json' -H 'Accept: application/json' \
            --data "$body" "$endpoint") || code=000
    case "$code" in
        200|201)
            run_id=$( { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dag_run_id"])' "$out" ||
                        jq -r '.dag_run_id' "$out"; } 2>/dev/null || echo "?")
            echo "triggered ${AIRFLOW_DAG_ID} run ${run_id} (attempt ${attempt})"
            # a service message value escapes | ' [ ] with |
            escaped=$(printf '%s' "$run_id" | sed -e "s/|/||/g" -e "s/'/|'/g" -e 's/\[/|[/g' -e 's/\]/|]/g')
            echo "##teamcity[setParameter name='env.AIRFLOW_DAG_RUN_ID' value='${escaped}']"
            exit 0 ;;
        401)
            if [ "$AIRFLOW_AUTH" = identity ]; then
                echo "Airflow refused the build's OIDC token (401): $(head -c 300 "$out") Check [identity] issuer and audience in rotator.toml." >&2
            else
                echo "Airflow refused the token (401): it expired or was revoked. Check 'rotator status' and that Rotator pushes env.AIRFLOW_API_TOKEN to this project." >&2
            fi
            exit 1 ;;
        403|404|409|422|400)
            echo "Airflow answered ${code}: $(head -c 300 "$out")" >&2
            exit 1 ;;
    esac
    if [ "$attempt" -ge "$MAX_ATTEMPTS" ]; then
        echo "giving up after ${attempt} attempts (last status ${code})" >&2
        exit 1
    fi
    delay=$(( 1 << (attempt - 1) ))
    jitter=$(( RANDOM % 1000 ))
    echo "attempt ${attempt} got ${code}; retrying in ${delay}.$(printf '%03d' "$jitter") s" >&2
    sleep "${delay}.$(printf '%03d' "$jitter")"
    attempt=$(( attempt + 1 ))
done
