package discovery

// ExitUnavailable is berth's exit code for a required dependency that stayed unavailable (README "Exit codes").
const ExitUnavailable = 69

// UnavailableError reports a dependency that stayed unavailable: Consul within consul.timeout while
// consul.required is set, or the ECS task metadata endpoint when a service name must come from it.
type UnavailableError struct {
	// What names the dependency ("consul", "ECS task metadata").
	What string
	// Err is the last error seen.
	Err error
}

func (e *UnavailableError) Error() string {
	return e.What + " unavailable: " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ExitCode maps the error to berth's exit code 69.
func (e *UnavailableError) ExitCode() int { return ExitUnavailable }
