"""Deploying mfc to an AWS account: the CloudFormation template ``deploy/cloudformation/mfc.yaml``
(:mod:`mfc.deploy.stack`: ``mfc deploy aws``), a profile from its outputs
(:mod:`mfc.deploy.configure`: ``mfc configure --from-stack``) and checks of a profile's resources
(:mod:`mfc.deploy.doctor`: ``mfc doctor``). What needs no AWS call is in :mod:`mfc.deploy.pure`."""
