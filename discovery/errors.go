package discovery

// ExitUnavailable is berth's exit code for a required dependency that stayed unavailable (SPEC §2).
const ExitUnavailable = 69

// UnavailableError reports that Consul did not answer within consul.timeout while consul.required is set.
type UnavailableError struct {
	// Err is the last error seen.
	Err error
}

func (e *UnavailableError) Error() string {
	return "consul unavailable (required = true): " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ExitCode maps the error to berth's exit code 69.
func (e *UnavailableError) ExitCode() int { return ExitUnavailable }
