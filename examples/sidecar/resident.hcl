# berth as a resident sidecar (same network namespace as the app under awsvpc): it registers the task's
# application in Consul with a check berth runs itself, follows its peers, and ships metrics. No main command.
service "app" {
  port = 8080
  check {
    http     = "http://127.0.0.1:8080/health"
    interval = "10s"
    timeout  = "2s"
  }
}

peers "cluster" {
  service = "app"
  file    = "/run/shared/peers"
  wait    = "10s"
}

telemetry {
  prometheus = "127.0.0.1:9102"
}
