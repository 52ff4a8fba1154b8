"""EC2 operations the sandbox adds to moto's EC2 handler."""

from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response

from .models import default_kms_key_id


class SandboxEC2Response(EC2Response):
    def get_ebs_default_kms_key_id(self) -> ActionResult:
        return ActionResult({"KmsKeyId": default_kms_key_id(self.ec2_backend)})
