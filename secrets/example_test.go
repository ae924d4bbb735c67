package secrets_test

import (
	"fmt"

	"github.com/berth-dev/berth/secrets"
)

func ExampleParseRef() {
	for _, v := range []string{
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf:password::",
		"ssm:/prod/app/key:3",
		"postgres://localhost/app",
		"secretsmanager:",
	} {
		ref, ok, err := secrets.ParseRef(v)
		switch {
		case err != nil:
			fmt.Println("config error:", err)
		case !ok:
			fmt.Println("not a reference")
		default:
			fmt.Printf("%s id=%s key=%q version=%q region=%q\n", ref.Kind, ref.ID, ref.JSONKey, ref.SSMSelector, ref.Region)
		}
	}
	// Output:
	// secretsmanager id=arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf key="password" version="" region="eu-west-1"
	// ssm id=/prod/app/key key="" version="3" region=""
	// not a reference
	// config error: malformed secretsmanager reference: empty secret id
}

func ExampleEnvName() {
	fmt.Println("APP_" + secrets.EnvName("db/api-key"))
	// Output: APP_DB_API_KEY
}
