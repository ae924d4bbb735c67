// Command godeps is bench/gobaseline with berth's dependencies blank-imported: the libraries the release
// binary links (Consul API, the AWS SDK's default configuration and the four service clients berth calls,
// datadog-go, go-hclog, oklog/run, HCL, the peers template engine), their package initialisation and nothing
// of berth's own code. bench/run.sh puts it next to berth
// and bench/godeps-required (the required dependencies only): the gap from godeps to berth is berth's own start
// path, the gap from gobaseline to godeps what the dependencies cost before berth runs a line.
package main
