module github.com/hubhooks/hubhooks/services

go 1.26.0
