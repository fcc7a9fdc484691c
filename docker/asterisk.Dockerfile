# The PBX of coverage-engine as a container: Debian unstable's Asterisk 22
# (Debian 12 has none) with exactly the configuration the sandbox runs:
# config/asterisk/, dialplan/ and sounds/en/ of this repository.
#
#   docker build -f docker/asterisk.Dockerfile -t coverage-pbx .     (from the repo root)
#
# Secrets are not in the image: mount a directory holding ari.conf
# (`password = ...`) and manager.conf (`secret = ...`) at
# /etc/asterisk/coverage-secrets (docker/make-secrets writes one, compose mounts it).
# Untested here: the machines this project is built on have no Docker engine.
FROM debian:sid-slim

COPY config/asterisk/packages.txt /tmp/packages.txt
RUN apt-get update \
 && sed 's/#.*//' /tmp/packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/packages.txt

# Replace Debian's sample configuration wholesale, as the sandbox does.
RUN rm -rf /etc/asterisk && mkdir -p /etc/asterisk/dialplan
COPY config/asterisk/*.conf /etc/asterisk/
COPY dialplan/*.conf /etc/asterisk/dialplan/
COPY sounds/en/*.gsm /usr/share/asterisk/sounds/en/coverage/

# Foreground, no console: the container's main process.
CMD ["/usr/sbin/asterisk", "-f", "-C", "/etc/asterisk/asterisk.conf"]
