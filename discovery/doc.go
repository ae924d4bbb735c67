// Package discovery owns berth's side of Consul: it registers the task's services with the local
// Consul agent, runs their health checks itself and reports the results to Consul TTL checks (so the agent
// never reaches into the task's network), keeps the registration alive across agent restarts, deregisters
// first on shutdown, toggles maintenance mode, and hands peer lists (Hazelcast-style "initial members") to
// clustered applications through env vars and files, following changes with blocking queries.
//
// # Knobs
//
// Consul (ConsulConfig, the `consul {}` block): address, scheme, token, token_file, datacenter, ca_file,
// ca_path, client_cert, client_key, tls_server_name, insecure_skip_verify. Empty fields fall back to the
// official client's environment: CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL,
// CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT, CONSUL_CAPATH, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY,
// CONSUL_TLS_SERVER_NAME. required (default false): when true Register retries until timeout (default 30s) and
// fails with exit code 69; when false the application starts even if Consul is down and registration is
// retried in the background with exponential back-off (500ms doubling, ±20% jitter) capped at 5s and at the
// shortest check interval, so a registration lands within about one interval of Consul answering however long
// it was down. Service names, IDs and the services peers blocks look up are checked by ValidName (letters,
// digits, '-', '_', '.', ':'; not "." or ".."), for flags and config files alike: they go into the agent
// API's URL paths.
//
// # Deadlines and outages
//
// Every request to Consul has a deadline: 5s (RequestTimeout) for registration, TTL updates, maintenance and
// deregistration, and wait + wait/16 (Consul's jitter) + 5s for a peers blocking query (5m25s with the
// default 5m wait); the transport's response-header timeout is the same bound as a net under them. A Consul
// that accepts connections and never answers therefore costs a request its deadline and nothing more:
//
//   - a request that gets no answer (refused, reset, timed out) marks Consul unreachable; status then reports
//     each registered service as "unknown" ("registered": false, "error" says since when and why) until Consul
//     answers again;
//   - the first answer after an outage re-issues every peers blocking query that lived through it (plainly,
//     as the index may be from before an agent restart), so a berth with services sees peers again within a
//     check interval of Consul's recovery; a peers-only berth within one blocking deadline;
//   - `berth ctl maintenance` answers within 5s with an error naming Consul; berth keeps the setting and
//     re-registers the service once Consul answers, which applies it;
//   - Deregister sends its requests in parallel, each bounded by 5s, and skips a service the agent never
//     confirmed (unless shutdown cut its registration off while Consul answered): with required = true and a
//     hung Consul berth exits 69 after consul.timeout, not after the drain timeout on top. A registration
//     that landed unseen is removed by Consul itself once its TTL check turned critical and
//     deregister_critical_after passed.
//   - A 404 on deregistration counts as done only when the agent's service list no longer has the ID.
//
// Services (ServiceConfig, `service "NAME" {}`): port, tags, meta, address ("auto" by default: the ECS task's
// IPv4 from ECS_CONTAINER_METADATA_URI_V4, else the first non-loopback interface address, else the hostname),
// deregister_critical_after (default 1m), checks. On ECS the name defaults to the lower-cased task family and
// meta gets ecs_cluster, ecs_task_arn, ecs_family, ecs_revision, availability_zone. IDs are
// NAME-<task id or hostname>-<port>.
//
// Bridge network mode (agent mode, address "auto"): when the task metadata says "bridge" and maps the service's
// port (tcp) to a host port, the service is registered with that host port and an empty address, so Consul
// gives the agent's node address (the host's, with the agent on the host), as registrator does; one info line
// says so. The checks are unchanged: they run in the task and probe what they name. The ID keeps the configured
// port. berth reads the node's address once (/v1/agent/self) so that include_self lists this instance where the
// others see it, before Consul does. No mapping: the task's address and the port as configured, with one warning; a port that already is a
// mapping's host port is kept, at the node address. An explicit address switches all of this off. Catalog mode
// keeps the task's (Docker bridge) address with one warning: there is no agent on the host to stand for it.
//
// Checks (CheckConfig, `check {}`): http (GET, 2xx/3xx passing, redirects not followed), tcp (connect), exec
// (through Config.Exec; exit 0 passing, 1 warning, other critical); interval (default 10s), timeout (default
// 5s, at most interval), initial_status (default critical), success_before_passing, failures_before_critical
// (both default 1). A check runs at once; until it has passed, again 100ms after each failed run (exec: at
// least 20 times its run time after), for 5 minutes from the start or from Agent.Restarted after a restart
// of the application, then every interval. Each check is a Consul TTL check with TTL = 3 × interval;
// berth sends a changed status at once and the result (status and output as the note) at least once per
// interval — that update is also the liveness probe of the registration: a 404 "unknown check" means the
// agent lost it, and berth re-registers at once, so within one interval.
// A service without checks gets one TTL check named "berth" that berth keeps passing every 10s: without it a
// SIGKILLed or OOM-killed task would stay registered forever; with it Consul removes the service
// deregister_critical_after after berth stopped refreshing it.
//
// Peers (PeersConfig, `peers "NAME" {}`): service, tag, passing_only (default true), include_self (default
// false; when true this berth's own instance is always in the list, even before its checks pass), min
// (default 0), wait (default 30s), env, file, template (text/template syntax over a list of peers with the
// fields ID, Name, Address, Port, Tags, Meta, Node and HostPort; func "join"; no method calls; default:
// comma-separated host:port), on_change ("none",
// "signal:SIGHUP", "restart"). The list is sorted by address, port and ID so it only changes when membership
// does.
//
// # Catalog mode (agentless)
//
// ConsulConfig.Mode "catalog" (`mode`, -consul-mode, BERTH_CONSUL_MODE; default "agent") registers the task
// with the servers' catalog API instead of a local agent, for Fargate (catalog.go):
//
//   - the task is a catalog node: node (default the ECS task id, else the hostname), the address "auto" gives,
//     node meta berth = "catalog", the ECS fields (ecs_cluster, ecs_task_arn, ecs_family, ecs_revision,
//     availability_zone) and berth_session; its services and checks go in with Catalog().Register, nothing
//     into an agent's local services;
//   - checks run in berth as in agent mode, and a check's status is written only when it changes (the output
//     goes with it; output changes under a stable status are not written): zero writes in steady state;
//   - liveness: a session bound to the node, without checks, TTL session_ttl (default 15s, 10s..24h), renewed
//     every session_ttl/2 (renewals reset a timer on the leader; they are not Raft writes). A renewal that
//     finds the session gone (Consul restarted empty, or a partition longer than 2×TTL) re-registers node,
//     session and services at once, so within session_ttl/2;
//   - ghosts: every berth sweeps the catalog instances of its own services at start-up and whenever the
//     cluster's sessions change (a blocking query on /v1/session/list, at most one sweep per second), and
//     deregisters each node whose berth_session no longer exists (read back just before, so a node that
//     re-registered with a new session is left alone). Consul invalidates a session 2×TTL after its last
//     renewal, so a SIGKILLed task is gone at most 2×session_ttl + about 1s after it died, while any instance
//     of the service lives. When the last instance dies nobody sweeps: the entry stays, with the status it
//     had, until the next instance starts and sweeps. A node registered but killed before its session was
//     created stays as a node without services (not in any service's list);
//   - shutdown: Deregister removes the node in one request (its services, checks and session go with it),
//     bounded by RequestTimeout, before the application is signalled; nothing re-registers after;
//   - maintenance: a critical check "_service_maintenance:ID" with the reason as its notes, as the agent
//     would add it; off removes it.
//
// # ACL login with the task's IAM role
//
// ConsulConfig.Login (`consul { login { method = "NAME", meta = {…} } }`, login.go): berth signs an STS
// GetCallerIdentity request with the task role's credentials (aws-sdk-go-v2's default chain: the ECS container
// credentials endpoint, or AWS_* variables) into consul-awsauth's login data (awsiam.go), trades it for a token at
// POST /v1/acl/login against an aws-iam auth method, puts that token on every request (a transport wrapper;
// it wins over token/token_file, which then serve nothing), and logs out when Run returns, at the end of
// shutdown (bounded by RequestTimeout; a failed logout leaves the token to the auth method's max_token_ttl).
// With required = true the login is retried with back-off until timeout while Consul does not answer or has
// no leader (then 69); a refusal (a principal the method does not trust, no binding rule, STS refusing the
// signature: Consul answers 403, or 500 with those messages) ends berth with 77 at once. Without required the
// application starts and registration retries the login with the same back-off, so neither case loops on
// crashes. A token Consul no longer knows (expired or deleted: "ACL not found", checked with a read of the
// token itself when a call reports a bare 403) is dropped and the next registration attempt logs in again:
// within session_ttl/2 in catalog mode, one check interval in agent mode.
//
// # Cost at steady state
//
// Agent mode: one PUT /v1/agent/check/update per check per interval, plus one blocking GET /v1/health/service per peers
// block per 5 minutes (Consul's wait); nothing polls. See TestSteadyStateRequestRate. Catalog mode: no
// catalog write while statuses are stable; one session renewal per session_ttl/2 (8 a minute by default);
// one blocking GET /v1/session/list per service name per 5 minutes unless sessions change. See
// TestFaultSteadyStateWrites.
//
// # Lifecycle
//
// New (no I/O) → Register (first registration; reads ECS metadata) → ResolvePeers (before the main command
// starts) → Run and WatchPeers as run.Group actors → Deregister as shutdown step 1, before the application is
// signalled. Once Deregister is called nothing re-registers or updates a TTL, even while Run's checks finish.
package discovery
