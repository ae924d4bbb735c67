# berth as a resident sidecar beside the application (one network namespace under awsvpc, so 127.0.0.1 is the
# app): it registers the task's application in Consul with a check berth runs itself, follows its peers into a
# file on a volume the application mounts, and serves metrics. No main command.
#
# In examples/ecs/task-definition-sidecar.json this container dependsOn the app (START): ECS stops containers
# in reverse dependency order, so at task stop this berth gets SIGTERM first, deregisters the app from Consul
# and exits, and only then does the app get its SIGTERM. The Consul agent is the task's consul-agent container
# (CONSUL_HTTP_ADDR=127.0.0.1:8500).
service "app" {
  port = 8080
  check {
    http     = "http://127.0.0.1:8080/health"
    interval = "10s"
    timeout  = "2s"
  }
}

# Written atomically (rename) on every change, on the "shared" volume (/run/shared in both containers). This
# container starts after the app, so the app reads the file when it appears and again when it changes.
peers "cluster" {
  service = "app"
  file    = "/run/shared/peers"
  wait    = "10s"
}

telemetry {
  prometheus = "127.0.0.1:9102"
}
