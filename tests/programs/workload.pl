# Allocation-heavy, deterministic Perl; prints a digest of each part.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my @words = map { sprintf("w%05d", ($_ * 7919) % 30011) } 0 .. 59999;
my %count;
$count{$_}++ for @words;
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 2];
print "hash ", scalar(keys %count), " @top ", md5_hex(join ",", map { "$_=$count{$_}" } sort keys %count), "\n";

my $big = join " ", @words;
(my $subbed = $big) =~ s/w0(\d)(\d+)/reverse($2) . $1/ge;
my @nines = $subbed =~ /\b9\w*/g;
print "regex ", length($subbed), " ", scalar(@nines), " ", md5_hex($subbed), "\n";

my @recs = map { { id => $_, name => $words[$_], tags => [ @words[$_ .. $_ + 4] ] } } grep { $_ % 3 == 0 } 0 .. 19999;
my $flat = join ";", map { join ",", $_->{id}, $_->{name}, @{ $_->{tags} } } @recs;
print "records ", scalar(@recs), " ", md5_hex($flat), "\n";

my @sorted = sort { length($a) <=> length($b) || $a cmp $b } map { $_ x ($_ =~ tr/1// + 1) } @words[0 .. 9999];
print "sort ", md5_hex(join "", @sorted), "\n";

my $packed = pack("N*", 0 .. 99999);
my @un = unpack("N*", $packed);
print "pack ", length($packed), " ", $un[-1], "\n";

my $s = "";
$s .= chr(65 + $_ % 26) for 0 .. 199999;
my %tree;
$tree{ substr($s, $_, 3) }{ substr($s, $_ + 3, 2) } .= "x" for 0 .. 49999;
print "strings ", length($s), " ", scalar(keys %tree), " ", md5_hex($s), "\n";
print "sprintf ", md5_hex(join "", map { sprintf("%08.3f|%-6s|%x", $_ / 7, $_, $_) } 0 .. 49999), "\n";
