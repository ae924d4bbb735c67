package main

func cmdValidate(args []string, stdio Stdio, env LookupEnv) int {
	return fail(stdio.Err, exitUsage, "validate: not built yet")
}
func cmdHealth(args []string, stdio Stdio, env LookupEnv) int {
	return fail(stdio.Err, exitUsage, "health: not built yet")
}
func cmdCtl(args []string, stdio Stdio, env LookupEnv) int {
	return fail(stdio.Err, exitUsage, "ctl: not built yet")
}
func cmdSecrets(args []string, stdio Stdio, env LookupEnv) int {
	return fail(stdio.Err, exitUsage, "secrets: not built yet")
}
