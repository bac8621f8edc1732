#!/usr/bin/perl
# Calls tessera-server's admin API for the interop scripts, with Perl's LWP (already there for
# the OCS agent, so the scripts need no curl).
#
#   admin-api.pl GET  /api/v1/devices
#   admin-api.pl POST /api/v1/assignments '{"device":1,"package":1716800000}'
#
# Environment: TESSERA_API (https://127.0.0.1:PORT), TESSERA_CA (the CA file that verifies
# the server's certificate) and TESSERA_ADMIN_TOKEN — the token travels in the environment,
# never on a command line that `ps` shows.
# Prints the response body; exits 1 with the status and body on anything but 2xx.
use strict;
use warnings;
use LWP::UserAgent;
use HTTP::Request;

my ($method, $path, $body) = @ARGV;
die "usage: $0 GET|POST PATH [JSON]\n" unless defined $method && defined $path;
my $base  = $ENV{TESSERA_API}         or die "TESSERA_API is not set\n";
my $ca    = $ENV{TESSERA_CA}          or die "TESSERA_CA is not set\n";
my $token = $ENV{TESSERA_ADMIN_TOKEN} or die "TESSERA_ADMIN_TOKEN is not set\n";

my $ua = LWP::UserAgent->new(
    timeout  => 30,
    ssl_opts => { verify_hostname => 1, SSL_ca_file => $ca },
);
# Loopback only: never through a proxy from the environment.
$ua->no_proxy('127.0.0.1', 'localhost');

my $request = HTTP::Request->new($method => "$base$path");
$request->header(Authorization => "Bearer $token");
if (defined $body) {
    $request->header('Content-Type' => 'application/json');
    $request->content($body);
}
my $response = $ua->request($request);
print $response->decoded_content // '';
unless ($response->is_success) {
    print STDERR "$method $path: ", $response->status_line, "\n";
    exit 1;
}
