//! Jobs: a unit of a team's work that groups LLM calls (the seed's job tracking). A job is a
//! small state machine: created, then completed or failed, once; calls are refused after it
//! ends. Its calls are usage records carrying the job id.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::team::TeamId;
use crate::text::{self, TextError};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::identifier("job_id", raw, 64).map(Self)
    }

    pub fn generate() -> Self {
        Self(format!("job_{}", Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    #[default]
    Running,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobCommand {
    Create {
        job_id: JobId,
        team_id: TeamId,
        job_type: String,
        metadata: serde_json::Value,
    },
    Complete {
        team_id: TeamId,
        result: Option<serde_json::Value>,
    },
    Fail {
        team_id: TeamId,
        error: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JobEvent {
    JobCreated {
        job_id: JobId,
        team_id: TeamId,
        job_type: String,
        metadata: serde_json::Value,
    },
    JobCompleted {
        job_id: JobId,
        team_id: TeamId,
        result: Option<serde_json::Value>,
    },
    JobFailed {
        job_id: JobId,
        team_id: TeamId,
        error: Option<String>,
    },
}

impl DomainEvent for JobEvent {
    fn event_type(&self) -> String {
        match self {
            Self::JobCreated { .. } => "JobCreated",
            Self::JobCompleted { .. } => "JobCompleted",
            Self::JobFailed { .. } => "JobFailed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JobError {
    #[error("a job with this id already exists")]
    AlreadyExists,
    /// Also for another team's job: its existence is not revealed.
    #[error("job not found")]
    NotFound,
    #[error("the job has already ended ({0})")]
    AlreadyEnded(&'static str),
}

/// The rules' state; the read model holds the rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Job {
    id: Option<JobId>,
    team_id: Option<TeamId>,
    status: JobStatus,
}

impl Job {
    pub fn team_id(&self) -> Option<&TeamId> {
        self.team_id.as_ref()
    }

    pub fn status(&self) -> JobStatus {
        self.status
    }

    /// The job, if it exists and belongs to `team`.
    fn owned_by(&self, team: &TeamId) -> Result<&JobId, JobError> {
        match (&self.id, &self.team_id) {
            (Some(id), Some(owner)) if owner == team => Ok(id),
            _ => Err(JobError::NotFound),
        }
    }

    fn running(&self) -> Result<(), JobError> {
        match self.status {
            JobStatus::Running => Ok(()),
            ended => Err(JobError::AlreadyEnded(ended.as_str())),
        }
    }
}

impl Aggregate for Job {
    const TYPE: &'static str = "Job";
    type Command = JobCommand;
    type Event = JobEvent;
    type Error = JobError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            JobCommand::Create {
                job_id,
                team_id,
                job_type,
                metadata,
            } => {
                if self.id.is_some() {
                    return Err(JobError::AlreadyExists);
                }
                let event = JobEvent::JobCreated {
                    job_id,
                    team_id,
                    job_type,
                    metadata,
                };
                sink.write(event, self).await;
            }
            JobCommand::Complete { team_id, result } => {
                let job_id = self.owned_by(&team_id)?.clone();
                self.running()?;
                let event = JobEvent::JobCompleted {
                    job_id,
                    team_id,
                    result,
                };
                sink.write(event, self).await;
            }
            JobCommand::Fail { team_id, error } => {
                let job_id = self.owned_by(&team_id)?.clone();
                self.running()?;
                let event = JobEvent::JobFailed {
                    job_id,
                    team_id,
                    error,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            JobEvent::JobCreated {
                job_id, team_id, ..
            } => {
                self.id = Some(job_id);
                self.team_id = Some(team_id);
                self.status = JobStatus::Running;
            }
            JobEvent::JobCompleted { .. } => self.status = JobStatus::Completed,
            JobEvent::JobFailed { .. } => self.status = JobStatus::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use serde_json::json;

    use super::*;

    type Framework = TestFramework<Job>;

    fn team(id: &str) -> TeamId {
        TeamId::parse(id).unwrap()
    }

    fn created() -> JobEvent {
        JobEvent::JobCreated {
            job_id: JobId::parse("job_1").unwrap(),
            team_id: team("team_a"),
            job_type: "summarize".into(),
            metadata: json!({}),
        }
    }

    #[test]
    fn a_job_ends_once() {
        Framework::with(())
            .given(vec![created()])
            .when(JobCommand::Complete {
                team_id: team("team_a"),
                result: None,
            })
            .then_expect_events(vec![JobEvent::JobCompleted {
                job_id: JobId::parse("job_1").unwrap(),
                team_id: team("team_a"),
                result: None,
            }]);
        let completed = JobEvent::JobCompleted {
            job_id: JobId::parse("job_1").unwrap(),
            team_id: team("team_a"),
            result: None,
        };
        Framework::with(())
            .given(vec![created(), completed.clone()])
            .when(JobCommand::Complete {
                team_id: team("team_a"),
                result: None,
            })
            .then_expect_error(JobError::AlreadyEnded("completed"));
        Framework::with(())
            .given(vec![created(), completed])
            .when(JobCommand::Fail {
                team_id: team("team_a"),
                error: None,
            })
            .then_expect_error(JobError::AlreadyEnded("completed"));
    }

    #[test]
    fn another_teams_job_does_not_exist() {
        Framework::with(())
            .given(vec![created()])
            .when(JobCommand::Fail {
                team_id: team("team_b"),
                error: Some("x".into()),
            })
            .then_expect_error(JobError::NotFound);
        Framework::with(())
            .given_no_previous_events()
            .when(JobCommand::Complete {
                team_id: team("team_a"),
                result: None,
            })
            .then_expect_error(JobError::NotFound);
    }
}
