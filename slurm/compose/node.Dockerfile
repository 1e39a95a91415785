# A SLURM node (controller or compute) with munge and Apptainer, for the compose test cluster.
# Apptainer is not packaged for bookworm: it comes from sid, pinned low so that only it (and the
# libraries it needs) come from there; slurm-wlm stays bookworm's 22.05, the same version as the
# slurm-client in the espnet3 CPU image, so sbatch inside the image talks to this controller.
ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN echo 'deb http://deb.debian.org/debian sid main' > /etc/apt/sources.list.d/sid.list \
 && printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' > /etc/apt/preferences.d/sid \
 && apt-get -o Acquire::Check-Valid-Until=false update -qq \
 && apt-get install -y -qq --no-install-recommends -t sid apptainer >/dev/null \
 && apt-get install -y -qq --no-install-recommends slurm-wlm munge procps iproute2 >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 # "full" asks for capabilities docker does not grant here; "no" works as root.
 && sed -i 's/^root default capabilities.*/root default capabilities = no/' /etc/apptainer/apptainer.conf \
 && grep -q '^root default capabilities = no' /etc/apptainer/apptainer.conf
COPY node-entrypoint.sh /usr/local/sbin/node-entrypoint.sh
ENTRYPOINT ["bash", "/usr/local/sbin/node-entrypoint.sh"]
