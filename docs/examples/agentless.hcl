# Fargate without a Consul agent: the task registers itself as a catalog node of the Consul servers
# (CONSUL_HTTP_ADDR, or address below), logging in to Consul with the task's IAM role.
# berth validate -config docs/examples/agentless.hcl

consul {
  address     = env("CONSUL_HTTP_ADDR", "consul.internal:8501")
  scheme      = "https"
  mode        = "catalog"
  session_ttl = "15s"
  required    = true

  login {
    method     = "aws"
    sts_region = "eu-west-1"
    meta       = { team = "payments" }
  }
}

main {
  command = ["/app/server"]
}

service "web" {
  port = 8080

  check { http = "http://127.0.0.1:8080/health", interval = "5s" }
}
