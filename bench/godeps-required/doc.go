// Command godeps-required is bench/gobaseline with only the dependencies the project requires blank-imported
// (Consul API, the AWS SDK's default configuration with its credential chain, datadog-go, go-hclog,
// oklog/run) and HCL for the configuration format: the floor of any berth built on them in one process,
// before a line of its own code runs. bench/run.sh puts it next to berth, tini and bench/godeps.
package main
