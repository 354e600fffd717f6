package flows

import "go.uber.org/zap"

// zapErr keeps call sites short; errors never carry secrets here (tokens
// and passwords are not put into errors).
func zapErr(err error) zap.Field { return zap.Error(err) }
