module chaperone.test/deploy/http-echo

go 1.22
